package faulttest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// state is what one key holds: nothing, or a value at a version.
type state struct {
	present bool
	version int64
	value   []byte
}

func (s state) String() string {
	if !s.present {
		return "absent"
	}
	return fmt.Sprintf("v%d %q", s.version, short(s.value))
}

func (s state) equal(o state) bool {
	return s.present == o.present && (!s.present || s.version == o.version && bytes.Equal(s.value, o.value))
}

func short(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s…(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

// write is one write a wallet sends: the keys it touches with the state each must have
// once it is applied, and, when it checks and bumps the store's global version, the
// global version it leaves.
type write struct {
	desc  string
	keys  []string
	after []state
	gv    *int64 // global version after the write, or nil
}

// doubt is a write whose outcome is unknown: either everything it touched has its
// "before" state or everything has its "after" state. The ledger freezes its keys (the
// wallet never writes them again), so a read-back settles which.
type doubt struct {
	write
	before   []state
	gvBefore int64
}

// Ledger records the acknowledged state of one store of one wallet: for each key the
// exact value and version it must have now, and for writes whose outcome is unknown the
// two complete states the store may be in. Verify reads everything back.
type Ledger struct {
	store string

	mu      sync.Mutex
	exact   map[string]state // keys whose state is known
	doubts  []*doubt
	gv      int64 // the global version, while gvKnown
	gvKnown bool
	// Counts of write outcomes.
	applied, refused, unknown int
	// violations are contradictions noticed while the load ran, such as a write the
	// ledger says must succeed being refused.
	violations []string
}

// NewLedger returns the ledger of an empty store.
func NewLedger(store string) *Ledger {
	return &Ledger{store: store, exact: map[string]state{}, gvKnown: true}
}

// State returns the known state of key; ok is false when its state is in doubt.
func (l *Ledger) State(key string) (s state, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.frozen(key) {
		return state{}, false
	}
	return l.exact[key], true
}

// GlobalVersion returns the store's global version; ok is false when it is in doubt.
func (l *Ledger) GlobalVersion() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gv, l.gvKnown
}

func (l *Ledger) frozen(key string) bool {
	for _, d := range l.doubts {
		if slices.Contains(d.keys, key) {
			return true
		}
	}
	return false
}

// Record enters the outcome of w. An applied write sets its keys' states; a refused one
// changes nothing; an unknown one puts its keys (and the global version, if it carried
// one) in doubt.
func (l *Ledger) Record(w write, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch o {
	case applied:
		l.applied++
		for i, k := range w.keys {
			l.exact[k] = w.after[i]
		}
		if w.gv != nil {
			l.gv = *w.gv
		}
	case refused:
		l.refused++
	case unknown:
		l.unknown++
		d := &doubt{write: w, gvBefore: l.gv}
		for _, k := range w.keys {
			d.before = append(d.before, l.exact[k])
			delete(l.exact, k)
		}
		if w.gv != nil {
			l.gvKnown = false
		}
		l.doubts = append(l.doubts, d)
	}
}

// Violation records a contradiction noticed while the load ran.
func (l *Ledger) Violation(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.violations = append(l.violations, fmt.Sprintf(format, args...))
}

// Counts returns how many writes were applied, refused and of unknown outcome.
func (l *Ledger) Counts() (applied, refused, unknown int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied, l.refused, l.unknown
}

// Verify reads back every key the ledger knows, the global version and the listing of
// the store, and returns every discrepancy: an acknowledged write missing or changed, a
// write in doubt partly visible, a key present that no write put there.
func (l *Ledger) Verify(ctx context.Context, c api) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	problems := slices.Clone(l.violations)
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("store %s: ", l.store)+fmt.Sprintf(format, args...))
	}
	read := func(key string) (state, bool) {
		s, err := readKey(ctx, c, l.store, key)
		if err != nil {
			fail("read %s: %v", key, err)
			return state{}, false
		}
		return s, true
	}
	present := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(l.exact)) {
		want := l.exact[k]
		got, ok := read(k)
		if !ok {
			continue
		}
		if !got.equal(want) {
			fail("key %s: acknowledged %v, read %v", k, want, got)
		}
		present[k] = got.present
	}
	gvWant := []int64{l.gv} // the global versions the store may have
	for _, d := range l.doubts {
		var got []state
		for _, k := range d.keys {
			s, ok := read(k)
			if !ok {
				break
			}
			got = append(got, s)
			present[k] = s.present
		}
		if len(got) < len(d.keys) {
			continue
		}
		before, after := true, true
		for i := range got {
			before = before && got[i].equal(d.before[i])
			after = after && got[i].equal(d.after[i])
		}
		switch {
		case before && d.gv != nil:
			gvWant = []int64{d.gvBefore}
		case after && d.gv != nil:
			gvWant = []int64{*d.gv}
		case !before && !after:
			fail("write in doubt %s is partly visible or changed: keys %v, before %v, after %v, read %v",
				d.desc, d.keys, d.before, d.after, got)
		}
		if before && after && d.gv != nil { // the keys cannot tell: either global version
			gvWant = []int64{d.gvBefore, *d.gv}
		}
	}
	if gv, ok := read("global_version"); ok && !slices.Contains(gvWant, gv.version) {
		fail("global version %d, want one of %v", gv.version, gvWant)
	}

	listed, err := listAll(ctx, c, l.store)
	if err != nil {
		fail("list: %v", err)
		return problems
	}
	for k, v := range listed {
		if !present[k] {
			fail("key %s (version %d) is listed but no acknowledged or doubtful write left it there", k, v)
		}
		if want, ok := l.exact[k]; ok && want.version != v {
			fail("key %s is listed with version %d, acknowledged %d", k, v, want.version)
		}
	}
	for k, p := range present {
		if _, ok := listed[k]; p && !ok {
			fail("key %s is readable but not listed", k)
		}
	}
	return problems
}

// readKey reads one key, retrying failures that may pass for up to 15 s.
func readKey(ctx context.Context, c api, store, key string) (state, error) {
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var res *vssv1.GetObjectResponse
		res, err = c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: store, Key: key})
		switch {
		case err == nil:
			if res.GetValue() == nil {
				return state{}, fmt.Errorf("no value in the response")
			}
			if res.GetValue().GetKey() != key {
				return state{}, fmt.Errorf("asked for %q, answered %q", key, res.GetValue().GetKey())
			}
			return state{present: true, version: res.GetValue().GetVersion(), value: res.GetValue().GetValue()}, nil
		case isCode(err, vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION):
			return state{}, nil
		case outcomeOf(err) == refused || ctx.Err() != nil:
			return state{}, err
		}
	}
	return state{}, err
}

// listAll lists every key of store with its version.
func listAll(ctx context.Context, c api, store string) (map[string]int64, error) {
	keys := map[string]int64{}
	var token *string
	for pages := 0; ; pages++ {
		if pages > 10000 {
			return nil, fmt.Errorf("more than 10000 pages")
		}
		var res *vssv1.ListKeyVersionsResponse
		var err error
		for range 100 {
			res, err = c.ListKeyVersions(ctx, &vssv1.ListKeyVersionsRequest{StoreId: store, PageToken: token})
			if err == nil || outcomeOf(err) == refused || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return nil, err
		}
		for _, kv := range res.GetKeyVersions() {
			if _, dup := keys[kv.GetKey()]; dup {
				return nil, fmt.Errorf("key %s listed twice", kv.GetKey())
			}
			if kv.GetKey() == "global_version" {
				return nil, fmt.Errorf("the reserved key global_version is listed")
			}
			keys[kv.GetKey()] = kv.GetVersion()
		}
		if res.GetNextPageToken() == "" {
			return keys, nil
		}
		t := res.GetNextPageToken()
		token = &t
	}
}
