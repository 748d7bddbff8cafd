package docs

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxPackageDocLines bounds a package's doc comment: a page saying what the
// package is for, its basic use, its concurrency model and its sharp edges.
// A design longer than that belongs in docs/design/, where the doc comment
// can point.
const maxPackageDocLines = 80

// TestPackageDocsFitAPage fails when the package doc comment of any Go
// package in the repository, in doc.go or wherever it is written, is longer
// than maxPackageDocLines.
func TestPackageDocsFitAPage(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		if f.Doc == nil {
			return nil
		}
		checked++
		lines := fset.Position(f.Doc.End()).Line - fset.Position(f.Doc.Pos()).Line + 1
		if lines > maxPackageDocLines {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s: package doc is %d lines, more than a page (%d): move the design to docs/design/", rel, lines, maxPackageDocLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no package docs found: is the root right?")
	}
}
