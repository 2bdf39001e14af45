package conformance

import (
	"fmt"
	"math/rand/v2"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// RaceWriter makes the requests of one writer racing others over a few keys of one store
// that every writer shares, as LDK Node's writes race: multi-key PutObjects naming shared
// keys in a random order at version -1; some also create a key of the writer's own at
// version 0 or delete it unconditionally (so that a store's general write path runs, not
// only its upsert); standalone DeleteObjects of shared keys (so that shared keys keep
// being created again); and, in other requests, a create of a shared key at version 0,
// which may legitimately conflict. No condition of any other request can fail, so none
// of them may be answered CONFLICT.
type RaceWriter struct {
	rng    *rand.Rand
	id     int
	shared int
	own    string // the writer's own key while it exists
	before string // own before the last request
	round  int
}

// NewRaceWriter returns writer id of a race over shared keys ("shared-0" ...), seeded
// with seed.
func NewRaceWriter(id, shared int, seed uint64) *RaceWriter {
	return &RaceWriter{rng: rand.New(rand.NewPCG(uint64(id), seed)), id: id, shared: shared}
}

// SharedKey names shared key i.
func SharedKey(i int) string { return fmt.Sprintf("shared-%d", i) }

// Next returns the writer's next requests in store: del, when not nil, is a standalone
// DeleteObject to send first; put is the PutObjects; creating tells whether put creates
// a shared key, and so may be answered CONFLICT. Call Failed when put was refused.
func (w *RaceWriter) Next(store string) (del *vssv1.DeleteObjectRequest, put *vssv1.PutObjectRequest, creating bool) {
	r := w.round
	w.round++
	perm := w.rng.Perm(w.shared)[:2+w.rng.IntN(w.shared-2)]
	put = &vssv1.PutObjectRequest{StoreId: store}
	for _, i := range perm {
		put.TransactionItems = append(put.TransactionItems, &vssv1.KeyValue{Key: SharedKey(i), Version: -1, Value: fmt.Appendf(nil, "w%d.r%d", w.id, r)})
	}
	w.before = w.own
	switch op := w.rng.IntN(5); {
	case op == 0 && w.own == "":
		w.own = fmt.Sprintf("own-%d-%d", w.id, r)
		put.TransactionItems = append(put.TransactionItems, &vssv1.KeyValue{Key: w.own, Version: 0, Value: []byte("mine")})
	case op == 0:
		put.DeleteItems = []*vssv1.KeyValue{{Key: w.own, Version: -1}}
		w.own = ""
	case op == 1:
		// Create a shared key somewhere in the list: may conflict.
		put.TransactionItems[w.rng.IntN(len(put.TransactionItems))].Version = 0
		creating = true
	case op == 2:
		del = &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: &vssv1.KeyValue{Key: SharedKey(perm[0]), Version: -1}}
	}
	return del, put, creating
}

// Failed records that the last PutObjects was refused: nothing of it was written.
func (w *RaceWriter) Failed() { w.own = w.before }
