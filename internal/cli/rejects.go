package cli

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/cairnstore/cairn/client"
)

// rejectsFile writes the lines an ingest rejected, as they were read, to
// the --rejects file. The node's reply names each rejected record by its
// byte offset in the stream, so the lines are read back from the input
// after the reply: directly when the input is a regular file, else from a
// spool that a copy of the stream was written to while it was sent. The
// lines go to a temporary file beside the target, renamed over it once
// complete, so an ingest without rejects leaves an earlier file alone.
type rejectsFile struct {
	path  string
	src   io.ReaderAt // the input, from its first byte at base
	base  int64
	spool *os.File // the copy of a stream that cannot be read again; nil for a file
}

// newRejectsFile prepares path for the rejected lines of in and returns
// the reader to send in place of in.
func newRejectsFile(path string, in io.Reader) (*rejectsFile, io.Reader, error) {
	if fi, err := os.Stat(path); err == nil {
		if f, ok := in.(*os.File); ok {
			if ii, err := f.Stat(); err == nil && os.SameFile(fi, ii) {
				return nil, nil, usageError(fmt.Sprintf("--rejects %s is the input: give another file", path))
			}
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, nil, usageError(fmt.Sprintf("--rejects %s: a directory, not a file", path))
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, nil, usageError(fmt.Sprintf("--rejects %s: no directory %s", path, filepath.Dir(path)))
	}
	r := &rejectsFile{path: path}
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
				r.src, r.base = f, pos
				return r, in, nil
			}
		}
	}
	spool, err := os.CreateTemp("", "cairn-ingest-*.ndjson")
	if err != nil {
		return nil, nil, fmt.Errorf("--rejects: a spool for the input: %w", err)
	}
	r.src, r.spool = spool, spool
	return r, io.TeeReader(in, spool), nil
}

// write writes the rejected lines in input order and returns how many.
func (r *rejectsFile) write(rejects []client.IngestReject) (int, error) {
	rejects = slices.Clone(rejects)
	slices.SortFunc(rejects, func(a, b client.IngestReject) int { return cmp.Compare(a.Offset, b.Offset) })
	err := writeOutput(r.path, 0o600, func(out io.Writer) error {
		w := bufio.NewWriter(out)
		for _, rj := range rejects {
			if err := copyLine(w, r.src, r.base+rj.Offset); err != nil {
				return fmt.Errorf("line %d: %w", rj.Line, err)
			}
		}
		return w.Flush()
	})
	return len(rejects), err
}

// copyLine copies the line at off in src to w, with its newline; a last
// line without one gets one, so the file can be sent as NDJSON.
func copyLine(w io.Writer, src io.ReaderAt, off int64) error {
	br := bufio.NewReader(io.NewSectionReader(src, off, math.MaxInt64-off))
	for {
		chunk, err := br.ReadSlice('\n')
		if _, werr := w.Write(chunk); werr != nil {
			return werr
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			_, err = io.WriteString(w, "\n")
			return err
		default:
			return err
		}
	}
}

// discard removes the spool, if any.
func (r *rejectsFile) discard() {
	if r.spool != nil {
		r.spool.Close()
		os.Remove(r.spool.Name())
	}
}
