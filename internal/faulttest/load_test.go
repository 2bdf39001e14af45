package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// keysPerGeneration is how many keys a wallet writes before a write of unknown outcome
// makes it move on to fresh keys.
const keysPerGeneration = 6

// wallet is one user with one store, writing the way a wallet does and entering every
// outcome in its ledger. It uses one binding throughout: the VSS HTTP API or Connect.
type wallet struct {
	name   string
	sk     *secp256k1.PrivateKey // the user's key, to reach the store through another server
	api    api
	ledger *Ledger
	rng    *rand.Rand
	gen    int // keys of older generations are never written again
	seq    int
}

// newWallets returns n wallets of the server at base, each its own user (signature
// authentication with its own key) and store; even ones use the VSS HTTP API, odd ones
// Connect.
func newWallets(t testing.TB, n int, base string, seed uint64) []*wallet {
	t.Helper()
	ws := make([]*wallet, n)
	for i := range ws {
		key, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("wallet-%d", i)
		ws[i] = &wallet{
			name:   name,
			sk:     key,
			api:    newAPI(i, base, key),
			ledger: NewLedger(name + "-store"),
			rng:    rand.New(rand.NewPCG(seed, uint64(i))),
		}
	}
	return ws
}

func (w *wallet) key(i int) string { return fmt.Sprintf("g%d/k%d", w.gen, i) }

// pick returns n distinct keys of the current generation.
func (w *wallet) pick(n int) []string {
	keys := make([]string, n)
	for i, j := range w.rng.Perm(keysPerGeneration)[:n] {
		keys[i] = w.key(j)
	}
	return keys
}

// value returns a new value for key, unique across the test: mostly small, sometimes
// tens of KiB.
func (w *wallet) value(key string) []byte {
	w.seq++
	n := 16 + w.rng.IntN(500)
	if w.rng.IntN(10) == 0 {
		n = 8<<10 + w.rng.IntN(56<<10)
	}
	v := fmt.Appendf(nil, "%s/%s/%d|", w.name, key, w.seq)
	for len(v) < n {
		v = append(v, byte('a'+w.rng.IntN(26)))
	}
	return v
}

// state returns the ledger's state of key of the current generation (always known).
func (w *wallet) state(key string) state {
	s, ok := w.ledger.State(key)
	if !ok {
		panic("wallet " + w.name + " writes key " + key + " that is in doubt")
	}
	return s
}

// conditional is a put item for key that must succeed: its version is the stored one.
func (w *wallet) conditional(key string) (*vssv1.KeyValue, state) {
	s := w.state(key)
	v := w.value(key)
	if !s.present {
		return &vssv1.KeyValue{Key: key, Version: 0, Value: v}, state{true, 1, v}
	}
	return &vssv1.KeyValue{Key: key, Version: s.version, Value: v}, state{true, s.version + 1, v}
}

// step sends one request and records its outcome.
func (w *wallet) step(ctx context.Context) {
	r := w.rng.IntN(100)
	switch {
	case r < 25: // unconditional single put
		k := w.pick(1)[0]
		v := w.value(k)
		w.put(ctx, "put -1 "+k, &vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{{Key: k, Version: -1, Value: v}}},
			write{keys: []string{k}, after: []state{{true, 1, v}}}, true)
	case r < 45: // conditional single put
		k := w.pick(1)[0]
		item, after := w.conditional(k)
		w.put(ctx, fmt.Sprintf("put v%d %s", item.Version, k), &vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{item}},
			write{keys: []string{k}, after: []state{after}}, true)
	case r < 70: // multi-item put, perhaps with deletes and the global version
		req, wr := w.multi(2 + w.rng.IntN(3))
		w.put(ctx, fmt.Sprintf("multi put %v", wr.keys), req, wr, true)
	case r < 80: // DeleteObject
		w.deleteObject(ctx)
	case r < 92: // a stale write: the server must refuse it, all of it
		w.stale(ctx)
	default: // a read, checked against the ledger
		k := w.pick(1)[0]
		want := w.state(k)
		got, err := readOnce(ctx, w.api, w.ledger.store, k)
		if err == nil && !got.equal(want) {
			w.ledger.Violation("%s: read %s: acknowledged %v, read %v", w.name, k, want, got)
		}
	}
}

// multi builds a put of n distinct keys that must succeed: conditional or
// unconditional puts, deletes of present keys, and sometimes the global version.
func (w *wallet) multi(n int) (*vssv1.PutObjectRequest, write) {
	req := &vssv1.PutObjectRequest{}
	var wr write
	for _, k := range w.pick(n) {
		s := w.state(k)
		switch c := w.rng.IntN(4); {
		case c == 0 && s.present:
			version := s.version
			if w.rng.IntN(2) == 0 {
				version = -1
			}
			req.DeleteItems = append(req.DeleteItems, &vssv1.KeyValue{Key: k, Version: version})
			wr.keys, wr.after = append(wr.keys, k), append(wr.after, state{})
		case c == 1:
			v := w.value(k)
			req.TransactionItems = append(req.TransactionItems, &vssv1.KeyValue{Key: k, Version: -1, Value: v})
			wr.keys, wr.after = append(wr.keys, k), append(wr.after, state{true, 1, v})
		default:
			item, after := w.conditional(k)
			req.TransactionItems = append(req.TransactionItems, item)
			wr.keys, wr.after = append(wr.keys, k), append(wr.after, after)
		}
	}
	if gv, ok := w.ledger.GlobalVersion(); ok && w.rng.IntN(2) == 0 {
		req.GlobalVersion = &gv
		next := gv + 1
		wr.gv = &next
	}
	return req, wr
}

// deleteObject deletes a key with its version or -1, or sends a delete with a stale
// version, which must succeed and change nothing.
func (w *wallet) deleteObject(ctx context.Context) {
	k := w.pick(1)[0]
	s := w.state(k)
	version, after, desc := int64(-1), state{}, "delete -1 "+k
	switch c := w.rng.IntN(3); {
	case c == 0 && s.present:
		version, desc = s.version, fmt.Sprintf("delete v%d %s", s.version, k)
	case c == 1 && s.present:
		version, after, desc = s.version+5, s, fmt.Sprintf("stale delete v%d %s", s.version+5, k)
	}
	err := w.api.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: w.ledger.store, KeyValue: &vssv1.KeyValue{Key: k, Version: version}})
	w.expect(desc, write{keys: []string{k}, after: []state{after}}, err, true)
}

// stale sends a write that the ledger says must be refused with a conflict: a single
// put with a wrong version, a multi-item put of which one item is stale, or a put with
// a stale global version.
func (w *wallet) stale(ctx context.Context) {
	req, wr := w.multi(1 + w.rng.IntN(3))
	gv, gvKnown := w.ledger.GlobalVersion()
	switch c := w.rng.IntN(3); {
	case c == 0 && gvKnown:
		wrong := gv + 1 + w.rng.Int64N(3)
		req.GlobalVersion = &wrong
		next := wrong + 1
		wr.gv = &next
	default:
		k := w.pick(1)[0]
		if w.rng.IntN(2) == 0 && len(req.TransactionItems) > 0 {
			k = req.TransactionItems[0].Key
			req.TransactionItems = req.TransactionItems[1:]
			i := indexOf(wr.keys, k)
			wr.keys = append(wr.keys[:i:i], wr.keys[i+1:]...)
			wr.after = append(wr.after[:i:i], wr.after[i+1:]...)
		} else if i := indexOf(wr.keys, k); i >= 0 {
			wr.keys = append(wr.keys[:i:i], wr.keys[i+1:]...)
			wr.after = append(wr.after[:i:i], wr.after[i+1:]...)
			req.TransactionItems = removeKey(req.TransactionItems, k)
			req.DeleteItems = removeKey(req.DeleteItems, k)
		}
		s := w.state(k)
		v := w.value(k)
		version := int64(0) // exists: conflict
		if !s.present {
			version = 1 + w.rng.Int64N(3) // missing: conflict
		} else if w.rng.IntN(2) == 0 {
			version = s.version + 1 + w.rng.Int64N(3)
		}
		req.TransactionItems = append(req.TransactionItems, &vssv1.KeyValue{Key: k, Version: version, Value: v})
		wr.keys, wr.after = append(wr.keys, k), append(wr.after, state{true, version + 1, v})
	}
	w.put(ctx, fmt.Sprintf("stale put %v", wr.keys), req, wr, false)
}

func indexOf(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

func removeKey(items []*vssv1.KeyValue, k string) []*vssv1.KeyValue {
	out := items[:0:0]
	for _, it := range items {
		if it.Key != k {
			out = append(out, it)
		}
	}
	return out
}

// put sends req to the wallet's store and records its outcome.
func (w *wallet) put(ctx context.Context, desc string, req *vssv1.PutObjectRequest, wr write, mustApply bool) {
	req.StoreId = w.ledger.store
	w.expect(desc, wr, w.api.PutObjects(ctx, req), mustApply)
}

// expect records the outcome of the write wr, which must apply (mustApply) or must be
// refused with a conflict. A write of unknown outcome moves the wallet to fresh keys;
// so does a contradiction, after it is recorded as a violation.
func (w *wallet) expect(desc string, wr write, err error, mustApply bool) {
	wr.desc = w.name + ": " + desc
	o := outcomeOf(err)
	switch {
	case o == unknown && !reportedRetryable(err):
		w.ledger.Violation("%s: failed in a way clients do not retry: %v", wr.desc, err)
	case o == unknown:
	case mustApply && o == refused:
		w.ledger.Violation("%s: refused although the acknowledged state allows it: %v", wr.desc, err)
		o = unknown
	case !mustApply && o == applied:
		w.ledger.Violation("%s: acknowledged although the acknowledged state forbids it", wr.desc)
		o = unknown
	case !mustApply && !isCode(err, vssv1.ErrorCode_CONFLICT_EXCEPTION):
		w.ledger.Violation("%s: refused with %v, want a conflict", wr.desc, err)
	}
	if !mustApply && o == refused {
		wr = write{desc: wr.desc} // a refused write changes nothing
	}
	w.ledger.Record(wr, o)
	if o == unknown {
		w.gen++
		time.Sleep(time.Duration(50+w.rng.IntN(50)) * time.Millisecond) // back off like a client
	}
}

// readOnce reads one key once.
func readOnce(ctx context.Context, c api, store, key string) (state, error) {
	res, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: store, Key: key})
	switch {
	case err == nil:
		return state{present: true, version: res.GetValue().GetVersion(), value: res.GetValue().GetValue()}, nil
	case isCode(err, vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION):
		return state{}, nil
	}
	return state{}, err
}

// load runs wallets until stop is called; stop returns once every request in flight
// has been answered and recorded, so that nothing is written after it.
type load struct {
	wallets []*wallet
	halt    atomic.Bool
	wg      sync.WaitGroup
}

// startLoad starts every wallet, each sending one request at a time with a short pause
// in between.
func startLoad(wallets []*wallet) *load {
	l := &load{wallets: wallets}
	for _, w := range wallets {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			// Requests are not canceled when the load stops: a canceled write could
			// still commit after the ledger is checked.
			ctx := context.Background()
			for !l.halt.Load() {
				w.step(ctx)
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) stop() {
	l.halt.Store(true)
	l.wg.Wait()
}

// applied returns the number of acknowledged writes so far.
func (l *load) applied() int {
	n := 0
	for _, w := range l.wallets {
		a, _, _ := w.ledger.Counts()
		n += a
	}
	return n
}

// verify stops nothing: it reads back every wallet's ledger and fails t on any
// discrepancy. Call it after stop.
func (l *load) verify(t *testing.T) {
	t.Helper()
	l.check(t, t.Error)
}

// check reads back every wallet's ledger, reports each discrepancy (the first 20) with
// report, and returns how many there were.
func (l *load) check(t *testing.T, report func(args ...any)) int {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	var applied, refused, unknown, problems int
	for _, w := range l.wallets {
		a, r, u := w.ledger.Counts()
		applied, refused, unknown = applied+a, refused+r, unknown+u
		for _, p := range w.ledger.Verify(ctx, w.api) {
			problems++
			if problems <= 20 {
				report(p)
			}
		}
	}
	if problems > 20 {
		report(fmt.Sprintf("… and %d more problems", problems-20))
	}
	t.Logf("ledger: %d wallets, %d writes acknowledged, %d refused, %d of unknown outcome; %d problems",
		len(l.wallets), applied, refused, unknown, problems)
	if applied == 0 {
		t.Error("no write was acknowledged: the load did not run")
	}
	return problems
}
