package conformance_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
)

// dumpServer serves a fresh store of kind name (see stores) and returns a client of it.
func dumpServer(t *testing.T, name string, protocol int) vssv1connect.VssServiceClient {
	t.Helper()
	for _, st := range stores {
		if st.name == name {
			return feedProtocols[protocol].new(serveFeed(t, st.open(t), server.FeedOptions{}).base)
		}
	}
	t.Fatalf("no store %q", name)
	return nil
}

// writeWallet writes a user's data that exercises everything a dump carries: an empty
// store id, a global version, versions above 1, a key deleted and created again (which
// moves it in the listing order), and a value larger than the import chunks.
func writeWallet(t *testing.T, c vssv1connect.VssServiceClient, user string) {
	t.Helper()
	ctx := context.Background()
	put := func(storeID string, gv *int64, items ...*vssv1.KeyValue) {
		t.Helper()
		if _, err := c.PutObjects(ctx, req(user, "", &vssv1.PutObjectRequest{StoreId: storeID, GlobalVersion: gv, TransactionItems: items})); err != nil {
			t.Fatalf("put %s: %v", storeID, err)
		}
	}
	gv := int64(0)
	put("", nil, kv("only", 0, "x"))
	put("wallet", &gv, kv("monitors/a", 0, "a0"), kv("monitors/b", 0, "b0"), kv("manager", 0, "m0"))
	gv = 1
	put("wallet", &gv, kv("monitors/a", 1, "a1"))
	put("wallet", nil, kv("monitors/a", 2, "a2"), kv("big", 0, strings.Repeat("v", 300<<10)))
	if _, err := c.DeleteObject(ctx, req(user, "", &vssv1.DeleteObjectRequest{StoreId: "wallet", KeyValue: kv("monitors/b", 1, "")})); err != nil {
		t.Fatal(err)
	}
	put("wallet", nil, kv("monitors/b", 0, "b-again"), kv("payments/1", -1, "p"))
}

// exportDump reads user's dump through ExportData.
func exportDump(t *testing.T, c vssv1connect.VssServiceClient, user string) []byte {
	t.Helper()
	stream, err := c.ExportData(context.Background(), req(user, "", &vssv1.ExportDataRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for stream.Receive() {
		buf.Write(stream.Msg().GetChunk())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("ExportData: %v", err)
	}
	return buf.Bytes()
}

// dumpSum reads a whole dump and returns its sum.
func dumpSum(t *testing.T, data []byte) dump.Sum {
	t.Helper()
	r, err := dump.NewReader(bytes.NewReader(data), dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		k, err := r.Next()
		if err != nil {
			t.Fatalf("reading the dump: %v", err)
		}
		if k == dump.KindEnd {
			return r.Sum()
		}
	}
}

// importDump sends data through ImportData from offset from in chunks of chunk bytes,
// or of the size of the next record when the server asks for more, for at most calls calls (0: no
// bound), as a client does. It returns the last answer.
func importDump(c vssv1connect.VssServiceClient, user, id string, data []byte, from int64, chunk, calls int) (*vssv1.ImportDataResponse, error) {
	off, size := from, chunk
	for i := 0; calls == 0 || i < calls; i++ {
		if i > 100000 {
			return nil, errors.New("the import does not advance")
		}
		end := min(int(off)+size, len(data))
		resp, err := c.ImportData(context.Background(), req(user, "", &vssv1.ImportDataRequest{
			ImportId: id, Offset: off, Chunk: data[off:end], Last: end == len(data)}))
		if err != nil {
			return nil, err
		}
		if resp.Msg.GetDone() {
			return resp.Msg, nil
		}
		size = max(chunk, int(resp.Msg.GetNextRecordBytes()))
		off = resp.Msg.GetCommittedOffset()
	}
	return &vssv1.ImportDataResponse{CommittedOffset: off}, nil
}

// listing is a store's keys as ListKeyVersions pages them, with their versions, and
// its global version.
func listing(t *testing.T, c vssv1connect.VssServiceClient, user, storeID string) []string {
	t.Helper()
	var out []string
	token := ""
	for {
		resp, err := c.ListKeyVersions(context.Background(), req(user, "", &vssv1.ListKeyVersionsRequest{StoreId: storeID, PageToken: &token, PageSize: ptr(int32(2))}))
		if err != nil {
			t.Fatal(err)
		}
		if gv := resp.Msg.GlobalVersion; gv != nil {
			out = append(out, fmt.Sprintf("global_version@%d", *gv))
		}
		for _, k := range resp.Msg.GetKeyVersions() {
			out = append(out, fmt.Sprintf("%s@%d", k.GetKey(), k.GetVersion()))
		}
		token = resp.Msg.GetNextPageToken()
		if token == "" || len(resp.Msg.GetKeyVersions()) == 0 {
			return out
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestDumpMovesAUserBetweenServers moves a user from a server on one store to a server
// on the other through ExportData and ImportData (in chunks far smaller than the largest
// record, so that the server asks for more), under another user name, and checks that
// the checksums, versions, global versions and listing order are the source's.
func TestDumpMovesAUserBetweenServers(t *testing.T) {
	for _, tc := range []struct{ from, to string }{{"embedded", "postgres"}, {"postgres", "memory"}} {
		for p, proto := range feedProtocols {
			t.Run(tc.from+"-to-"+tc.to+"/"+proto.name, func(t *testing.T) {
				t.Parallel()
				src, dst := dumpServer(t, tc.from, p), dumpServer(t, tc.to, p)
				writeWallet(t, src, "alice")
				data := exportDump(t, src, "alice")
				sum := dumpSum(t, data)
				if sum.Stores != 2 || sum.Entries != 6 {
					t.Fatalf("the export holds %d stores and %d entries, want 2 and 6", sum.Stores, sum.Entries)
				}
				resp, err := importDump(dst, "bob", "move-1", data, 0, 777, 0)
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				if !bytes.Equal(resp.GetSha256(), sum.SHA256[:]) || resp.GetStores() != 2 || resp.GetEntries() != 6 {
					t.Fatalf("import answered %x (%d stores, %d entries), the dump is %x", resp.GetSha256(), resp.GetStores(), resp.GetEntries(), sum.SHA256)
				}
				if again := dumpSum(t, exportDump(t, dst, "bob")); again.SHA256 != sum.SHA256 {
					t.Fatalf("the target exports %x, the source %x", again.SHA256, sum.SHA256)
				}
				for _, st := range []string{"", "wallet"} {
					if a, b := listing(t, src, "alice", st), listing(t, dst, "bob", st); !slices.Equal(a, b) {
						t.Errorf("store %q lists %v at the target, %v at the source", st, b, a)
					}
				}
				got, err := dst.GetObject(context.Background(), req("bob", "", &vssv1.GetObjectRequest{StoreId: "wallet", Key: "big"}))
				if err != nil || len(got.Msg.GetValue().GetValue()) != 300<<10 {
					t.Fatalf("the large value: %v", err)
				}
			})
		}
	}
}

// TestImportResumes interrupts an import, then resumes it twice: from the offset the
// server committed, and from the beginning with a new export of the same data (as a
// client that lost its place does), and checks that chunks at other offsets write
// nothing.
func TestImportResumes(t *testing.T) {
	for _, name := range []string{"postgres", "embedded"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, dst := dumpServer(t, name, 0), dumpServer(t, name, 0)
			writeWallet(t, src, "alice")
			data := exportDump(t, src, "alice")
			sum := dumpSum(t, data)

			part, err := importDump(dst, "bob", "resume", data, 0, 100, 3)
			if err != nil || part.GetDone() || part.GetCommittedOffset() == 0 {
				t.Fatalf("partial import: %+v %v", part, err)
			}
			// A chunk at another offset is told where to send from.
			wrong, err := dst.ImportData(context.Background(), req("bob", "", &vssv1.ImportDataRequest{ImportId: "resume", Offset: 1, Chunk: data[1:50]}))
			if err != nil || wrong.Msg.GetCommittedOffset() != part.GetCommittedOffset() {
				t.Fatalf("a chunk at the wrong offset: %+v %v", wrong, err)
			}
			// An unknown import cannot continue mid-way.
			_, err = dst.ImportData(context.Background(), req("bob", "", &vssv1.ImportDataRequest{ImportId: "other", Offset: 5, Chunk: data[5:50]}))
			if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatalf("a chunk of an unknown import: %v", err)
			}
			// Another import of the same stores is refused, and removes only its own.
			_, err = importDump(dst, "bob", "other", data, 0, 1<<20, 0)
			if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatalf("another import into the stores being imported: %v", err)
			}
			// A few more chunks from where it stopped, then from the beginning with a new
			// export (another header, the same data).
			part, err = importDump(dst, "bob", "resume", data, part.GetCommittedOffset(), 100, 1)
			if err != nil || part.GetDone() {
				t.Fatalf("resumed import: %+v %v", part, err)
			}
			again := exportDump(t, src, "alice")
			resp, err := importDump(dst, "bob", "resume", again, 0, 4096, 0)
			if err != nil || !bytes.Equal(resp.GetSha256(), sum.SHA256[:]) {
				t.Fatalf("import resumed from the beginning: %+v %v", resp, err)
			}
			// The last chunk sent again (its answer lost), or the whole dump from 0: done.
			for _, from := range []int64{int64(len(again)) - 10, 0} {
				resent, err := dst.ImportData(context.Background(), req("bob", "", &vssv1.ImportDataRequest{
					ImportId: "resume", Offset: from, Chunk: again[from:], Last: true}))
				if err != nil || !resent.Msg.GetDone() || !bytes.Equal(resent.Msg.GetSha256(), sum.SHA256[:]) {
					t.Fatalf("the dump sent again from %d after the import was done: %+v %v", from, resent, err)
				}
			}
			if again := dumpSum(t, exportDump(t, dst, "bob")); again.SHA256 != sum.SHA256 {
				t.Fatalf("the target exports %x, the source %x", again.SHA256, sum.SHA256)
			}
			// Finished: the same dump again is refused, the stores are no longer empty.
			if _, err := importDump(dst, "bob", "resume", data, 0, 1<<20, 0); connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatalf("importing a finished import again: %v", err)
			}
			if again := dumpSum(t, exportDump(t, dst, "bob")); again.SHA256 != sum.SHA256 {
				t.Fatal("the refused import changed the stores")
			}
		})
	}
}

// TestImportRefusesBadDumps sends bad dumps, whole or cut after some chunks were
// committed, and checks that each is refused with INVALID_ARGUMENT and leaves nothing.
func TestImportRefusesBadDumps(t *testing.T) {
	for _, name := range []string{"postgres", "embedded"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := dumpServer(t, name, 0)
			writeWallet(t, src, "alice")
			data := exportDump(t, src, "alice")
			flipped := bytes.Clone(data)
			flipped[bytes.Index(flipped, []byte("vvvvvvvv"))+1000] ^= 0x10 // inside the large value
			version := bytes.Clone(data)
			version[len(dump.Magic)+4] = 9 // the header's format_version
			hdr, err := dump.NewReader(bytes.NewReader(data), dump.ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// After the header, a record that says it is 1 TiB long.
			oversized := binary.AppendUvarint(bytes.Clone(data[:hdr.Offset()]), 1<<40)
			oversized = append(oversized, "and a little"...)
			for _, bad := range []struct {
				name string
				data []byte
				want error
			}{
				{"truncated", data[:len(data)-10], dump.ErrTruncated},
				{"flipped-byte", flipped, dump.ErrChecksum},
				{"wrong-version", version, dump.ErrVersion},
				{"oversized-record", oversized, dump.ErrTooLarge},
				{"not-a-dump", []byte("PK\x03\x04 a zip file"), dump.ErrNotDump},
			} {
				dst := dumpServer(t, name, 0)
				_, err := importDump(dst, "bob", "bad", bad.data, 0, 200, 0)
				if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), bad.want.Error()) {
					t.Errorf("%s: %v, want INVALID_ARGUMENT naming %q", bad.name, err, bad.want)
				}
				if s := dumpSum(t, exportDump(t, dst, "bob")); s.Stores != 0 {
					t.Errorf("%s: %d stores left behind", bad.name, s.Stores)
				}
			}
		})
	}
}

// TestImportChecksTheKeyLimitWithTheUser imports a dump whose store id and key are
// within the limits alone but not with the importing user's name (2560 bytes together):
// refused for a long user name, accepted for a short one.
func TestImportChecksTheKeyLimitWithTheUser(t *testing.T) {
	t.Parallel()
	storeID := strings.Repeat("€", 48) + "a"               // 145 bytes, 49 characters
	key := strings.Repeat("\U0001F511", dump.MaxKeyLength) // 2400 bytes, 600 characters
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Header{Producer: "test", Scope: dump.ScopeUser, Versions: true, ListingOrder: true, GlobalVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.BeginStore(dump.Store{ID: storeID}); err != nil {
		t.Fatal(err)
	}
	if err := w.Entry(dump.Entry{Key: key, Version: 3, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.EndStore(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := dumpServer(t, "embedded", 0)
	long := strings.Repeat("u", 20)
	if _, err := importDump(c, long, "k", buf.Bytes(), 0, 1<<20, 0); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "2560") {
		t.Errorf("import for a long user name: %v, want INVALID_ARGUMENT naming the limit", err)
	}
	if s := dumpSum(t, exportDump(t, c, long)); s.Stores != 0 {
		t.Errorf("the refused import left %d stores", s.Stores)
	}
	if _, err := importDump(c, "bob", "k", buf.Bytes(), 0, 1<<20, 0); err != nil {
		t.Errorf("import for a short user name: %v", err)
	}
}

// TestDeleteStoreAndAllData checks the guard of DeleteStore and DeleteAllData, their dry
// runs, and that what they delete is gone.
func TestDeleteStoreAndAllData(t *testing.T) {
	for _, name := range []string{"postgres", "embedded"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := dumpServer(t, name, 0)
			ctx := context.Background()
			writeWallet(t, c, "alice")
			writeWallet(t, c, "carol")
			for _, confirm := range []string{"", "delete store", "delete store other", "delete all data"} {
				_, err := c.DeleteStore(ctx, req("alice", "", &vssv1.DeleteStoreRequest{StoreId: "wallet", Confirm: confirm}))
				if connect.CodeOf(err) != connect.CodeInvalidArgument {
					t.Errorf("DeleteStore with confirm %q: %v", confirm, err)
				}
			}
			if _, err := c.DeleteAllData(ctx, req("alice", "", &vssv1.DeleteAllDataRequest{})); connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("DeleteAllData without confirm: %v", err)
			}
			dry, err := c.DeleteStore(ctx, req("alice", "", &vssv1.DeleteStoreRequest{StoreId: "wallet", DryRun: true}))
			if err != nil || dry.Msg.GetKeys() != 6 || dry.Msg.GetDeleted() {
				t.Fatalf("dry run: %+v %v", dry, err)
			}
			del, err := c.DeleteStore(ctx, req("alice", "", &vssv1.DeleteStoreRequest{StoreId: "wallet", Confirm: "delete store wallet"}))
			if err != nil || !del.Msg.GetDeleted() || del.Msg.GetKeys() != 6 || del.Msg.GetBytes() != dry.Msg.GetBytes() {
				t.Fatalf("delete: %+v %v", del, err)
			}
			if l := listing(t, c, "alice", "wallet"); len(l) != 1 || l[0] != "global_version@0" {
				t.Errorf("the deleted store lists %v", l)
			}
			if l := listing(t, c, "alice", ""); len(l) != 2 {
				t.Errorf("another store of the user lists %v", l)
			}
			all, err := c.DeleteAllData(ctx, req("alice", "", &vssv1.DeleteAllDataRequest{Confirm: "delete all data"}))
			if err != nil || !all.Msg.GetDeleted() || all.Msg.GetStores() != 1 || all.Msg.GetKeys() != 1 {
				t.Fatalf("delete all: %+v %v", all, err)
			}
			if s := dumpSum(t, exportDump(t, c, "alice")); s.Stores != 0 {
				t.Errorf("%d stores left after DeleteAllData", s.Stores)
			}
			if s := dumpSum(t, exportDump(t, c, "carol")); s.Stores != 2 || s.Entries != 6 {
				t.Errorf("another user's data changed: %+v", s)
			}
		})
	}
}

// TestImportCountsAgainstQuotaAndRateLimit imports under a key quota the dump does not
// fit in, and sends chunks faster than the user's rate limit: the quota refuses the
// import (RESOURCE_EXHAUSTED) and nothing of it stays; the rate limit refuses chunks as
// it refuses any request of the user, with a Retry-After.
func TestImportCountsAgainstQuotaAndRateLimit(t *testing.T) {
	for _, qs := range quotaStores[:2] {
		t.Run(qs.name, func(t *testing.T) {
			t.Parallel()
			src := dumpServer(t, "memory", 0)
			writeWallet(t, src, "alice")
			data := exportDump(t, src, "alice")

			c := vssv1connect.NewVssServiceClient(http.DefaultClient, serveOptions(t, server.Options{Store: qs.open(t, storage.Quota{MaxKeys: 5})}))
			_, err := importDump(c, "bob", "q", data, 0, 1<<20, 0)
			if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "quota") {
				t.Fatalf("an import over the quota: %v, want RESOURCE_EXHAUSTED", err)
			}
			if s := dumpSum(t, exportDump(t, c, "bob")); s.Stores != 0 {
				t.Errorf("the import over the quota left %d stores", s.Stores)
			}

			limited := vssv1connect.NewVssServiceClient(http.DefaultClient, serveOptions(t, server.Options{
				Store: qs.open(t, storage.Quota{}), RateLimit: server.RateLimit{Rate: 1, Burst: 2}}))
			_, err = importDump(limited, "bob", "r", data, 0, 200, 0)
			var ce *connect.Error
			if connect.CodeOf(err) != connect.CodeResourceExhausted || !errors.As(err, &ce) || ce.Meta().Get("Retry-After") == "" {
				t.Fatalf("chunks over the rate limit: %v, want RESOURCE_EXHAUSTED with Retry-After", err)
			}
		})
	}
}

// TestImportDataRefusesADatabaseDump sends a dump of a whole database: a user cannot
// import other users' stores, and the answer says so (INVALID_ARGUMENT).
func TestImportDataRefusesADatabaseDump(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Header{Producer: "test", Scope: dump.ScopeDatabase, Versions: true, ListingOrder: true, GlobalVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.BeginStore(dump.Store{User: "carol", ID: "wallet"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Entry(dump.Entry{Key: "k", Version: 1, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.EndStore(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := dumpServer(t, "memory", 0)
	if _, err := importDump(c, "bob", "db", buf.Bytes(), 0, 1<<20, 0); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "whole database") {
		t.Fatalf("a database dump: %v, want INVALID_ARGUMENT", err)
	}
	if s := dumpSum(t, exportDump(t, c, "carol")); s.Stores != 0 {
		t.Errorf("the refused dump wrote %d stores for carol", s.Stores)
	}
}
