package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// TestStaleHintAcrossInstances has two stores on one database, as two server
// instances. Instance a writes a store nobody follows; instance b's device then follows
// it. a still believes nobody does, so its next write meets BeginBatch's VS428, corrects
// the hint and runs again the followed way: the change is recorded once, with its
// device, and the writes after it too, with no error reaching the caller.
func TestStaleHintAcrossInstances(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := openStore(t, url), openStore(t, url)
	ctx := context.Background()
	put := func(s *Store, device, key string, version int64) {
		t.Helper()
		wctx := storage.WithWriter(ctx, storage.Writer{DeviceID: device})
		if err := s.Put(wctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{{Key: key, Version: version, Value: []byte(key)}}}); err != nil {
			t.Fatalf("put %s by %s: %v", key, device, err)
		}
	}
	put(a, "phone", "before", 0)
	if a.hints.followed("u", "s") {
		t.Fatal("a believes the store followed before anyone followed it")
	}
	page, err := b.Changes(ctx, "u", storage.ChangesRequest{StoreID: "s", HeadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if page.Head != 1 {
		t.Fatalf("head after the first follow of a store with keys = %d, want 1", page.Head)
	}
	put(a, "phone", "after", 0)
	if !a.hints.followed("u", "s") {
		t.Error("a's hint was not corrected by the write that met the follow")
	}
	put(a, "phone", "after", 1)
	if err := a.Delete(storage.WithWriter(ctx, storage.Writer{DeviceID: "phone"}), "u", "s", "before", -1); err != nil {
		t.Fatal(err)
	}
	page, err = b.Changes(ctx, "u", storage.ChangesRequest{StoreID: "s", After: 1, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range page.Changes {
		got = append(got, fmt.Sprintf("%d:%s@%d/%s/%v", c.Seq, c.Key, c.Version, c.DeviceID, c.Deleted))
	}
	want := []string{"2:after@1/phone/false", "3:after@2/phone/false", "4:before@1/phone/true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes after the follow = %v, want %v", got, want)
	}
}

// TestOtherWriters writes vss_db directly, as a tool that is not the server would (no
// BeginBatch): the trigger still records the changes of a followed store, and records
// nothing for a store nobody follows.
func TestOtherWriters(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openStore(t, url)
	ctx := context.Background()
	if _, err := s.Changes(ctx, "u", storage.ChangesRequest{StoreID: "followed", HeadOnly: true}); err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
		VALUES ('u', 'followed', 'k', '\x00', 1, now(), now()), ('u', 'other', 'k', '\x00', 1, now(), now());
		DELETE FROM vss_db WHERE user_token = 'u' AND key = 'k'`)
	for _, c := range []struct {
		store string
		want  []string
	}{{"followed", []string{"1:k@1/false", "2:k@1/true"}}, {"other", nil}} {
		page, err := s.Changes(ctx, "u", storage.ChangesRequest{StoreID: c.store, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range page.Changes {
			got = append(got, fmt.Sprintf("%d:%s@%d/%v", ch.Seq, ch.Key, ch.Version, ch.Deleted))
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: changes %v, want %v", c.store, got, c.want)
		}
	}
}
