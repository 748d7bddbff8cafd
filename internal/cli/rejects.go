package cli

import (
	"bufio"
	"bytes"
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
	spool *spoolTee // the copy of a stream that cannot be read again; nil for a file
}

// spoolTee copies what is read through it to a spool file. A failed write
// (a full disk) ends the copy, not the stream: the ingest goes on, and the
// rejected lines past the copy's last whole line are not written.
type spoolTee struct {
	r       io.Reader
	f       *os.File
	n       int64 // bytes copied
	wholeTo int64 // the copy holds every line that starts before this offset
	err     error // the write that ended the copy
}

func (t *spoolTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && t.err == nil {
		if _, werr := t.f.Write(p[:n]); werr != nil {
			t.err = werr
		} else {
			if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
				t.wholeTo = t.n + int64(i) + 1
			}
			t.n += int64(n)
		}
	}
	return n, err
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
	// Unlinked at once: the copy is read through the open file and goes
	// with it, however the command ends.
	os.Remove(spool.Name())
	r.src, r.spool = spool, &spoolTee{r: in, f: spool}
	return r, r.spool, nil
}

// write writes the rejected lines in input order and returns how many.
func (r *rejectsFile) write(rejects []client.IngestReject) (int, error) {
	rejects = slices.Clone(rejects)
	slices.SortFunc(rejects, func(a, b client.IngestReject) int { return cmp.Compare(a.Offset, b.Offset) })
	if r.spool != nil && r.spool.err != nil {
		// Only the lines the copy holds whole.
		rejects = slices.DeleteFunc(rejects, func(rj client.IngestReject) bool { return rj.Offset >= r.spool.wholeTo })
	}
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

// spoolFailed says why the copy of the input ended early, and where; "" if
// it did not.
func (r *rejectsFile) spoolFailed() string {
	if r.spool == nil || r.spool.err == nil {
		return ""
	}
	return fmt.Sprintf("the copy of the input kept for --rejects stopped after %d bytes (%v): rejected lines after that are not in %s",
		r.spool.wholeTo, r.spool.err, r.path)
}

// discard closes the spool, if any (it is unlinked already).
func (r *rejectsFile) discard() {
	if r.spool != nil {
		r.spool.f.Close()
	}
}
