// Package docs checks the repository's documentation against its code.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository root, two levels above this package.
const root = "../.."

var (
	// testFunc matches the declaration of a test, benchmark, fuzz target or
	// example, with or without a receiver-less generic suffix.
	testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz|Example)\w*)\(`)
	// citedName matches a test name as the docs write it: a Go identifier
	// starting with one of the prefixes and an upper-case letter, so that
	// words such as "Testing" in prose do not count.
	citedName = regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z]\w*)`)
)

// TestCitedTestsExist fails when README.md or a page under docs/ names a
// test, benchmark or fuzz target that no _test.go file declares: a claim
// that cites its proof must cite a proof that exists.
func TestCitedTestsExist(t *testing.T) {
	declared := declaredTests(t)
	docs := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			docs = append(docs, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := 0
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range citedName.FindAllStringSubmatch(line, -1) {
				cited++
				if !declared[m[1]] {
					t.Errorf("%s:%d cites %s, which no _test.go declares", rel, i+1, m[1])
				}
			}
		}
	}
	if cited == 0 {
		t.Fatal("no test names found in the docs: is the root right?")
	}
}

// declaredTests returns the name of every test, benchmark, fuzz target and
// example declared in the repository's _test.go files.
func declaredTests(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no tests declared: is the root right?")
	}
	return names
}
