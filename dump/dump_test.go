package dump_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/govss/vss/dump"
	dumpv1 "github.com/govss/vss/gen/vss/dump/v1"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
)

// sample is a dump's content: stores in order, each with its entries oldest first.
type sample struct {
	store   dump.Store
	entries []dump.Entry
}

func userSample() []sample {
	gv := dump.Store{ID: "wallet", GlobalVersion: 7, HasGlobalVersion: true}
	return []sample{
		{store: dump.Store{ID: ""}},
		{store: dump.Store{ID: "notes"}, entries: []dump.Entry{{Key: "todo", Version: 3, Value: []byte("milk")}}},
		{store: gv, entries: []dump.Entry{
			{Key: "zeta", Version: 1, Value: []byte{0, 1, 2, 0xff}},
			{Key: "alpha", Version: 42},
			{Key: "ключ", Version: 9223372036854775807, Value: bytes.Repeat([]byte{0xab}, 70000)},
		}},
	}
}

func header(scope dump.Scope) dump.Header {
	return dump.Header{Producer: "dump_test", Created: time.Unix(1700000000, 5).UTC(), Scope: scope,
		Snapshot: true, ListingOrder: true, Versions: true, GlobalVersions: true}
}

func write(t testing.TB, h dump.Header, stores []sample) ([]byte, dump.Sum) {
	t.Helper()
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		if err := w.BeginStore(s.store); err != nil {
			t.Fatal(err)
		}
		for _, e := range s.entries {
			if err := w.Entry(e); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.EndStore(); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

// readAll reads a dump completely, returning its header, content and sum, or the first error.
func readAll(data []byte, opts dump.ReaderOptions) (dump.Header, []sample, dump.Sum, error) {
	r, err := dump.NewReader(bytes.NewReader(data), opts)
	if err != nil {
		return dump.Header{}, nil, dump.Sum{}, err
	}
	var out []sample
	for {
		k, err := r.Next()
		if err != nil {
			return r.Header(), out, dump.Sum{}, err
		}
		switch k {
		case dump.KindStore:
			out = append(out, sample{store: r.Store()})
		case dump.KindEntry:
			out[len(out)-1].entries = append(out[len(out)-1].entries, r.Entry())
		case dump.KindEnd:
			if _, err := r.Next(); err != io.EOF {
				return r.Header(), out, dump.Sum{}, errors.New("Next after KindEnd did not return io.EOF")
			}
			return r.Header(), out, r.Sum(), nil
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		h      dump.Header
		stores []sample
	}{
		{"user", header(dump.ScopeUser), userSample()},
		{"empty", header(dump.ScopeUser), nil},
		{"database", header(dump.ScopeDatabase), []sample{
			{store: dump.Store{User: "alice", ID: "b"}, entries: []dump.Entry{{Key: "k", Version: 1}}},
			{store: dump.Store{User: "alice", ID: "c"}},
			{store: dump.Store{User: "bob", ID: "a", HasGlobalVersion: true, GlobalVersion: 1}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, wsum := write(t, tc.h, tc.stores)
			h, got, rsum, err := readAll(data, dump.ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.h {
				t.Errorf("header %+v, want %+v", h, tc.h)
			}
			if rsum != wsum || rsum.Stores != uint64(len(tc.stores)) {
				t.Errorf("reader sum %+v, writer sum %+v", rsum, wsum)
			}
			if len(got) != len(tc.stores) {
				t.Fatalf("%d stores, want %d", len(got), len(tc.stores))
			}
			for i, s := range tc.stores {
				if got[i].store != s.store || len(got[i].entries) != len(s.entries) {
					t.Fatalf("store %d: %+v with %d entries, want %+v with %d", i, got[i].store, len(got[i].entries), s.store, len(s.entries))
				}
				for j, e := range s.entries {
					g := got[i].entries[j]
					if g.Key != e.Key || g.Version != e.Version || !bytes.Equal(g.Value, e.Value) {
						t.Errorf("store %d entry %d: %q v%d, want %q v%d", i, j, g.Key, g.Version, e.Key, e.Version)
					}
				}
			}
		})
	}
}

// TestChecksumKnownAnswer computes the checksums of docs/dump-format.md independently of
// the package, so that the specification, not only the code, is tested, and records the
// result that other implementations can check themselves against.
func TestChecksumKnownAnswer(t *testing.T) {
	t.Parallel()
	u32 := func(b *bytes.Buffer, n int) { b.Write(binary.BigEndian.AppendUint32(nil, uint32(n))) }
	u64 := func(b *bytes.Buffer, n uint64) { b.Write(binary.BigEndian.AppendUint64(nil, n)) }
	storeSum := func(s sample) [32]byte {
		var b bytes.Buffer
		b.WriteString("vss.dump.v1 store\n")
		u32(&b, len(s.store.ID))
		b.WriteString(s.store.ID)
		if s.store.HasGlobalVersion {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
		u64(&b, uint64(s.store.GlobalVersion))
		for _, e := range s.entries {
			u32(&b, len(e.Key))
			b.WriteString(e.Key)
			u64(&b, uint64(e.Version))
			u64(&b, uint64(len(e.Value)))
			b.Write(e.Value)
		}
		return sha256.Sum256(b.Bytes())
	}
	stores := []sample{
		{store: dump.Store{ID: "wallet", HasGlobalVersion: true, GlobalVersion: 2}, entries: []dump.Entry{
			{Key: "a", Version: 1, Value: []byte("hello")},
			{Key: "b", Version: 5},
		}},
	}
	var d bytes.Buffer
	d.WriteString("vss.dump.v1 dump\n")
	for _, s := range stores {
		u32(&d, len(s.store.User))
		d.WriteString(s.store.User)
		u32(&d, len(s.store.ID))
		d.WriteString(s.store.ID)
		sum := storeSum(s)
		d.Write(sum[:])
	}
	want := sha256.Sum256(d.Bytes())
	_, sum := write(t, header(dump.ScopeUser), stores)
	if sum.SHA256 != want {
		t.Fatalf("dump SHA-256 %x, the specification gives %x", sum.SHA256, want)
	}
	// The values docs/dump-format.md gives for this example.
	if got := hex.EncodeToString(sum.SHA256[:]); got != exampleDumpSHA256 {
		t.Errorf("dump SHA-256 of the example %s, docs/dump-format.md states %s", got, exampleDumpSHA256)
	}
	if got := storeSum(stores[0]); hex.EncodeToString(got[:]) != exampleStoreSHA256 {
		t.Errorf("store SHA-256 of the example %x, docs/dump-format.md states %s", got, exampleStoreSHA256)
	}
}

// The checksums of the example in docs/dump-format.md.
const (
	exampleStoreSHA256 = "b78f822367da0750e14ad6912c898891c3ad5a530a56136508b46b8e33c07cd4"
	exampleDumpSHA256  = "85e77a4687881ac5ca1b0691c972c531b4efd3f4521e58b90a9128fcb3e85bc8"
)

// TestLimitsMatchServer keeps the dump's limits those of the server and the store.
func TestLimitsMatchServer(t *testing.T) {
	t.Parallel()
	if dump.MaxStoreIDLength != server.MaxStoreIDLength || dump.MaxKeyLength != server.MaxKeyLength ||
		dump.MaxUserLength != server.MaxUserLength || dump.MaxEntryBytes != server.MaxEntryBytes {
		t.Error("the dump's limits differ from the server's")
	}
	if dump.DefaultMaxRecordBytes < server.DefaultMaxBodyBytes {
		t.Error("a value the server accepts would not fit in a record")
	}
	if dump.GlobalVersionKey != storage.GlobalVersionKey {
		t.Error("the global version key differs from the store's")
	}
}

// raw builds a dump from records as given, for dumps no Writer would write.
func raw(recs ...*dumpv1.Record) []byte {
	b := []byte(dump.Magic)
	for _, r := range recs {
		m, err := proto.Marshal(r)
		if err != nil {
			panic(err)
		}
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

func hdr(version uint32, scope dumpv1.Scope) *dumpv1.Record {
	return &dumpv1.Record{Kind: &dumpv1.Record_Header{Header: &dumpv1.Header{FormatVersion: version, Scope: scope}}}
}

func begin(user, id string) *dumpv1.Record {
	return &dumpv1.Record{Kind: &dumpv1.Record_StoreBegin{StoreBegin: &dumpv1.StoreBegin{User: user, StoreId: id}}}
}

func entry(key string, version int64, value string) *dumpv1.Record {
	return &dumpv1.Record{Kind: &dumpv1.Record_Entry{Entry: &dumpv1.Entry{Key: key, Version: version, Value: []byte(value)}}}
}

// end closes store id with its correct checksum over entries.
func end(id string, entries ...dump.Entry) *dumpv1.Record {
	h := dump.NewStoreHash(dump.Store{ID: id})
	for _, e := range entries {
		h.Add(e)
	}
	s := h.Sum()
	return &dumpv1.Record{Kind: &dumpv1.Record_StoreEnd{StoreEnd: &dumpv1.StoreEnd{Entries: s.Entries, Sha256: s.SHA256[:]}}}
}

func trailer(stores, entries uint64, sum []byte) *dumpv1.Record {
	return &dumpv1.Record{Kind: &dumpv1.Record_Trailer{Trailer: &dumpv1.Trailer{Stores: stores, Entries: entries, Sha256: sum}}}
}

func TestBadDumps(t *testing.T) {
	t.Parallel()
	good, _ := write(t, header(dump.ScopeUser), userSample())
	_, emptySum := write(t, header(dump.ScopeUser), nil)
	user := dumpv1.Scope_SCOPE_USER
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		opts dump.ReaderOptions
		want error
	}{
		{"not a dump", []byte("PGDMP\x01\x0e\x00 a pg_dump file"), dump.ReaderOptions{}, dump.ErrNotDump},
		{"empty input", nil, dump.ReaderOptions{}, dump.ErrTruncated},
		{"cut before the trailer", good[:len(good)-40], dump.ReaderOptions{}, dump.ErrTruncated},
		{"value changed", flip(len(good) - 200), dump.ReaderOptions{}, dump.ErrChecksum},
		{"format version 2", raw(hdr(2, user)), dump.ReaderOptions{}, dump.ErrVersion},
		{"format version 0", raw(hdr(0, user)), dump.ReaderOptions{}, dump.ErrVersion},
		{"no scope", raw(hdr(1, dumpv1.Scope_SCOPE_UNSPECIFIED)), dump.ReaderOptions{}, dump.ErrInvalid},
		{"record over the limit", good, dump.ReaderOptions{MaxRecordBytes: 1000}, dump.ErrTooLarge},
		{"huge length", append([]byte(dump.Magic), 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f), dump.ReaderOptions{}, dump.ErrTooLarge},
		{"length over 64 bits", append([]byte(dump.Magic), bytes.Repeat([]byte{0xff}, 11)...), dump.ReaderOptions{}, dump.ErrInvalid},
		{"no header", raw(begin("", "a")), dump.ReaderOptions{}, dump.ErrOrder},
		{"second header", raw(hdr(1, user), hdr(1, user)), dump.ReaderOptions{}, dump.ErrOrder},
		{"entry outside a store", raw(hdr(1, user), entry("k", 1, "")), dump.ReaderOptions{}, dump.ErrOrder},
		{"stores out of order", raw(hdr(1, user), begin("", "b"), end("b"), begin("", "a")), dump.ReaderOptions{}, dump.ErrOrder},
		{"store twice", raw(hdr(1, user), begin("", "a"), end("a"), begin("", "a")), dump.ReaderOptions{}, dump.ErrOrder},
		{"store inside a store", raw(hdr(1, user), begin("", "a"), begin("", "b")), dump.ReaderOptions{}, dump.ErrOrder},
		{"trailer inside a store", raw(hdr(1, user), begin("", "a"), trailer(0, 0, nil)), dump.ReaderOptions{}, dump.ErrOrder},
		{"data after the trailer", append(bytes.Clone(good), 0), dump.ReaderOptions{}, dump.ErrOrder},
		{"store end miscounts", raw(hdr(1, user), begin("", "a"), entry("k", 1, ""), end("a")), dump.ReaderOptions{}, dump.ErrChecksum},
		{"trailer miscounts", raw(hdr(1, user), trailer(1, 0, emptySum.SHA256[:])), dump.ReaderOptions{}, dump.ErrChecksum},
		{"trailer checksum", raw(hdr(1, user), trailer(0, 0, make([]byte, 32))), dump.ReaderOptions{}, dump.ErrChecksum},
		{"user in a user dump", raw(hdr(1, user), begin("alice", "a")), dump.ReaderOptions{}, dump.ErrInvalid},
		{"no user in a database dump", raw(hdr(1, dumpv1.Scope_SCOPE_DATABASE), begin("", "a")), dump.ReaderOptions{}, dump.ErrInvalid},
		{"long store id", raw(hdr(1, user), begin("", strings.Repeat("s", 121))), dump.ReaderOptions{}, dump.ErrInvalid},
		{"empty key", raw(hdr(1, user), begin("", "a"), entry("", 1, "")), dump.ReaderOptions{}, dump.ErrInvalid},
		{"global version as a key", raw(hdr(1, user), begin("", "a"), entry("global_version", 1, "")), dump.ReaderOptions{}, dump.ErrInvalid},
		{"long key", raw(hdr(1, user), begin("", "a"), entry(strings.Repeat("k", 601), 1, "")), dump.ReaderOptions{}, dump.ErrInvalid},
		{"NUL in a key", raw(hdr(1, user), begin("", "a"), entry("a\x00b", 1, "")), dump.ReaderOptions{}, dump.ErrInvalid},
		{"negative version", raw(hdr(1, user), begin("", "a"), entry("k", -1, "")), dump.ReaderOptions{}, dump.ErrInvalid},
		{"record of no kind", raw(hdr(1, user), &dumpv1.Record{}), dump.ReaderOptions{}, dump.ErrInvalid},
		{"record does not decode", append(raw(hdr(1, user)), 2, 0xff, 0xff), dump.ReaderOptions{}, dump.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := readAll(tc.data, tc.opts)
			var fe *dump.FormatError
			if !errors.Is(err, tc.want) || !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FormatError matching %v", err, tc.want)
			}
			for _, other := range []error{dump.ErrNotDump, dump.ErrVersion, dump.ErrTruncated, dump.ErrChecksum, dump.ErrTooLarge, dump.ErrOrder, dump.ErrInvalid} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

// TestEveryPrefixIsTruncated cuts a dump at every byte: each proper prefix is refused
// as truncated, never accepted and never as anything else.
func TestEveryPrefixIsTruncated(t *testing.T) {
	t.Parallel()
	good, _ := write(t, header(dump.ScopeUser), userSample()[:2])
	for n := range len(good) {
		if _, _, _, err := readAll(good[:n], dump.ReaderOptions{}); !errors.Is(err, dump.ErrTruncated) {
			t.Fatalf("prefix of %d of %d bytes: %v, want ErrTruncated", n, len(good), err)
		}
	}
}

// TestEveryBitFlipIsRefused flips each bit of a small dump's records: the reader refuses
// every change that alters content, and accepts only changes of the header's
// informational fields.
func TestEveryBitFlipIsRefused(t *testing.T) {
	t.Parallel()
	good, want := write(t, header(dump.ScopeUser), userSample()[:2])
	for i := range len(good) * 8 {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		_, _, sum, err := readAll(b, dump.ReaderOptions{})
		if err == nil && sum != want {
			t.Fatalf("bit %d flipped: accepted with a different checksum", i)
		}
	}
}

func TestWriterRefusesMisuse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		use  func(w *dump.Writer) error
	}{
		{"entry outside a store", func(w *dump.Writer) error { return w.Entry(dump.Entry{Key: "k"}) }},
		{"end without a store", func(w *dump.Writer) error { _, err := w.EndStore(); return err }},
		{"close with a store open", func(w *dump.Writer) error {
			_ = w.BeginStore(dump.Store{ID: "a"})
			_, err := w.Close()
			return err
		}},
		{"stores out of order", func(w *dump.Writer) error {
			_ = w.BeginStore(dump.Store{ID: "b"})
			_, _ = w.EndStore()
			return w.BeginStore(dump.Store{ID: "a"})
		}},
		{"global version key", func(w *dump.Writer) error {
			_ = w.BeginStore(dump.Store{ID: "a"})
			return w.Entry(dump.Entry{Key: "global_version", Version: 1})
		}},
		{"user in a user dump", func(w *dump.Writer) error { return w.BeginStore(dump.Store{User: "u", ID: "a"}) }},
		{"write after close", func(w *dump.Writer) error {
			_, _ = w.Close()
			return w.BeginStore(dump.Store{ID: "a"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, err := dump.NewWriter(io.Discard, header(dump.ScopeUser))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.use(w); !errors.Is(err, dump.ErrWriterState) {
				t.Fatalf("error %v, want ErrWriterState", err)
			}
		})
	}
}

// FuzzReader feeds the reader arbitrary input under a small record limit: it must never
// panic or allocate beyond the limit, and whatever it accepts, a Writer re-encodes with
// the same checksum.
func FuzzReader(f *testing.F) {
	good, _ := write(f, header(dump.ScopeUser), userSample()[:2])
	db, _ := write(f, header(dump.ScopeDatabase), []sample{{store: dump.Store{User: "u", ID: "s"}, entries: []dump.Entry{{Key: "k", Version: 1, Value: []byte("v")}}}})
	f.Add(good)
	f.Add(db)
	f.Add(good[:len(good)/2])
	f.Add([]byte(dump.Magic))
	f.Add(raw(hdr(1, dumpv1.Scope_SCOPE_USER), begin("", "a"), entry("k", 1, "v"), end("a", dump.Entry{Key: "k", Version: 1, Value: []byte("v")})))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, stores, sum, err := readAll(data, dump.ReaderOptions{MaxRecordBytes: 1 << 16})
		if err != nil {
			var fe *dump.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		_, again := write(t, h, stores)
		if again != sum {
			t.Fatalf("re-encoded with checksum %x, read %x", again.SHA256, sum.SHA256)
		}
	})
}
