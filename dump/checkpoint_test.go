package dump_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/govss/vss/dump"
)

// readChunked reads data as a server reads a dump sent in chunks: each chunk through a
// Reader resumed from the previous chunk's checkpoint, the next chunk starting at the
// checkpoint's offset (re-sending the cut record), until the dump ends.
func readChunked(t *testing.T, data []byte, cuts []int) ([]sample, dump.Sum, error) {
	t.Helper()
	var out []sample
	var cp []byte
	off := 0
	for i := 0; ; i++ {
		end := len(data)
		if i < len(cuts) && cuts[i] > off && cuts[i] < len(data) {
			end = cuts[i]
		}
		chunk := bytes.NewReader(data[off:end])
		var r *dump.Reader
		var err error
		if cp == nil {
			if r, err = dump.NewReader(chunk, dump.ReaderOptions{}); err != nil {
				if dump.Truncated(err) && end < len(data) {
					continue // the header is cut: send more from 0
				}
				return out, dump.Sum{}, err
			}
		} else if r, err = dump.Resume(chunk, cp, dump.ReaderOptions{}); err != nil {
			return out, dump.Sum{}, err
		}
		for {
			k, err := r.Next()
			if dump.Truncated(err) && end < len(data) {
				break
			}
			if err != nil {
				return out, dump.Sum{}, err
			}
			switch k {
			case dump.KindStore:
				out = append(out, sample{store: r.Store()})
			case dump.KindEntry:
				out[len(out)-1].entries = append(out[len(out)-1].entries, r.Entry())
			case dump.KindEnd:
				return out, r.Sum(), nil
			}
		}
		if cp, err = r.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		off = int(r.Offset())
	}
}

func TestCheckpointResumesAtEveryCut(t *testing.T) {
	t.Parallel()
	data, sum := write(t, header(dump.ScopeUser), userSample())
	want := userSample()
	for cut := 1; cut < len(data); cut += 1 + cut/64 {
		got, gotSum, err := readChunked(t, data, []int{cut, cut + 7, cut + 20000})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if gotSum != sum || !sameContent(got, want) {
			t.Fatalf("cut at %d: read %v %x, want %v %x", cut, got, gotSum.SHA256, want, sum.SHA256)
		}
	}
}

// sameContent compares two dumps' content, an empty value equal to a nil one.
func sameContent(a, b []sample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].store != b[i].store || len(a[i].entries) != len(b[i].entries) {
			return false
		}
		for j, e := range a[i].entries {
			f := b[i].entries[j]
			if e.Key != f.Key || e.Version != f.Version || !bytes.Equal(e.Value, f.Value) {
				return false
			}
		}
	}
	return true
}

func TestCheckpointKeepsCheckingChecksums(t *testing.T) {
	t.Parallel()
	data, _ := write(t, header(dump.ScopeUser), userSample())
	// A flipped byte after the cut is still found by the resumed reader.
	for _, cut := range []int{40, len(data) / 2, len(data) - 40} {
		bad := bytes.Clone(data)
		bad[len(bad)-45] ^= 1
		if _, _, err := readChunked(t, bad, []int{cut}); err == nil {
			t.Fatalf("cut at %d: a flipped byte went unnoticed", cut)
		}
	}
}

func TestPendingRecordTellsTheCutRecordsSize(t *testing.T) {
	t.Parallel()
	data, _ := write(t, header(dump.ScopeUser), userSample())
	// The 70000-byte value is one record: cut inside it, the reader says how long it is.
	at := bytes.Index(data, bytes.Repeat([]byte{0xab}, 100))
	r, err := dump.NewReader(bytes.NewReader(data[:at+10]), dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = r.Next()
	}
	if !dump.Truncated(err) {
		t.Fatal(err)
	}
	if p := r.PendingRecord(); p < 70000 || r.Offset()+p > int64(len(data)) {
		t.Fatalf("pending record of %d bytes at %d in a dump of %d", p, r.Offset(), len(data))
	}
}

func TestNoCheckpointAfterABadDumpOrTheEnd(t *testing.T) {
	t.Parallel()
	data, _ := write(t, header(dump.ScopeUser), userSample())
	r, err := dump.NewReader(bytes.NewReader(data), dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = r.Next()
	}
	if err != io.EOF {
		t.Fatal(err)
	}
	if _, err := r.Checkpoint(); !errors.Is(err, dump.ErrNoCheckpoint) {
		t.Fatalf("checkpoint after the end: %v", err)
	}
	bad := bytes.Clone(data)
	bad[len(bad)-45] ^= 1
	r, err = dump.NewReader(bytes.NewReader(bad), dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = r.Next()
	}
	var fe *dump.FormatError
	if !errors.As(err, &fe) || dump.Truncated(err) {
		t.Fatalf("flipped byte: %v", err)
	}
	if _, err := r.Checkpoint(); !errors.Is(err, dump.ErrNoCheckpoint) {
		t.Fatalf("checkpoint after a bad dump: %v", err)
	}
	if _, err := dump.Resume(bytes.NewReader(nil), []byte("{}"), dump.ReaderOptions{}); err == nil {
		t.Fatal("an empty checkpoint was accepted")
	}
}
