package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/govss/vss/client/encrypted"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/server/auth"
)

// wallet is one simulated wallet: its own user (a secp256k1 key, authenticated with the
// reference signature scheme) and its own stores.
type wallet struct {
	user string // what the server derives from the signature: the public key in hex
	priv *secp256k1.PrivateKey

	mu     sync.Mutex
	second int64  // the UNIX second hdr was signed at
	hdr    string // the Authorization header for that second

	// keys encrypt the wallet's data through the connect-encrypted binding.
	keysOnce sync.Once
	keys     encrypted.Keys
}

// auth returns the Authorization header the reference client would send now: it signs
// every request with the current UNIX time, and as the signature is deterministic
// (RFC 6979), every request within one second carries the same header. Signing once per
// second gives exactly those bytes without spending the benchmark's CPU on signatures.
func (w *wallet) auth() string {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := now.Unix(); s != w.second || w.hdr == "" {
		w.second, w.hdr = s, auth.SignatureHeader(w.priv, now)
	}
	return w.hdr
}

func newWallets(n int) ([]*wallet, error) {
	ws := make([]*wallet, n)
	for i := range ws {
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, err
		}
		ws[i] = &wallet{user: hex.EncodeToString(priv.PubKey().SerializeCompressed()), priv: priv}
	}
	return ws, nil
}

// Sizes are the value sizes and counts of the scenarios; Smoke shrinks them.
type Sizes struct {
	Small       int // put-small, get, put-cas, put-batch item
	Batch       int // items in one put-batch request
	StartupKeys int // keys in a startup store
	StartupVal  int // value size in a startup store
	Large       int // large
	GetKeys     int // keys in a get store
	CASKeys     int // keys each put-cas worker cycles through
	MixScale    float64
}

// DefaultSizes are the sizes.
var DefaultSizes = Sizes{Small: 1024, Batch: 100, StartupKeys: 5000, StartupVal: 512, Large: 8 << 20, GetKeys: 100, CASKeys: 100, MixScale: 1}

// SmokeSizes keep a smoke run within seconds.
var SmokeSizes = Sizes{Small: 1024, Batch: 100, StartupKeys: 200, StartupVal: 512, Large: 1 << 20, GetKeys: 100, CASKeys: 100, MixScale: 0.25}

// worker is the state of one wallet's loop in one cell.
type worker struct {
	w       *wallet
	c       client
	storeID string
	sz      Sizes
	rng     *mrand.Rand
	buf     []byte // random bytes values are cut from
	// put-cas
	versions map[string]int64
	// startup
	keys    []string
	next    int
	token   string
	listing bool
	cycles  int
	// ldk-mix
	seq     int
	updates []string
}

func (k *worker) value(n int) []byte {
	if n > len(k.buf) {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	off := k.rng.IntN(len(k.buf) - n + 1)
	return k.buf[off : off+n]
}

// Scenario is one kind of load. Op issues exactly one request.
type Scenario struct {
	Name string
	// Seeded scenarios read data that setup writes once per target into the store named
	// after the scenario; the others write into a fresh store per cell.
	seed func(ctx context.Context, c client, w *wallet, storeID string, sz Sizes) error
	op   func(ctx context.Context, k *worker) error
	// MaxConc caps the concurrency the scenario runs at (0: no cap), to bound set-up
	// time and memory.
	MaxConc int
}

// Scenarios are every scenario, in the order they run.
var Scenarios = []*Scenario{
	{Name: "put-small", op: opPutSmall},
	{Name: "put-cas", op: opPutCAS},
	{Name: "get", seed: seedGet, op: opGet},
	{Name: "put-batch", op: opPutBatch},
	{Name: "startup", seed: seedStartup, op: opStartup, MaxConc: 64},
	{Name: "ldk-mix", op: opMix},
	{Name: "large", op: opLarge, MaxConc: 16},
}

func opPutSmall(ctx context.Context, k *worker) error {
	key := fmt.Sprintf("small/%d", k.rng.IntN(100))
	return k.c.put(ctx, k.w, k.storeID, []*vssv1.KeyValue{{Key: key, Version: -1, Value: k.value(k.sz.Small)}})
}

func opPutCAS(ctx context.Context, k *worker) error {
	key := fmt.Sprintf("cas/%d", k.rng.IntN(k.sz.CASKeys))
	v := k.versions[key] // 0 creates the key
	if err := k.c.put(ctx, k.w, k.storeID, []*vssv1.KeyValue{{Key: key, Version: v, Value: k.value(k.sz.Small)}}); err != nil {
		return err
	}
	k.versions[key] = v + 1
	return nil
}

func seedGet(ctx context.Context, c client, w *wallet, storeID string, sz Sizes) error {
	return putMany(ctx, c, w, storeID, sz.GetKeys, sz.Small, "get/")
}

func opGet(ctx context.Context, k *worker) error {
	_, err := k.c.get(ctx, k.w, k.storeID, fmt.Sprintf("get/%d", k.rng.IntN(k.sz.GetKeys)))
	return err
}

func opPutBatch(ctx context.Context, k *worker) error {
	items := make([]*vssv1.KeyValue, k.sz.Batch)
	base := k.rng.IntN(1000)
	for i := range items {
		items[i] = &vssv1.KeyValue{Key: fmt.Sprintf("batch/%d/%d", base, i), Version: -1, Value: k.value(k.sz.Small)}
	}
	return k.c.put(ctx, k.w, k.storeID, items)
}

func seedStartup(ctx context.Context, c client, w *wallet, storeID string, sz Sizes) error {
	return putMany(ctx, c, w, storeID, sz.StartupKeys, sz.StartupVal, "startup/")
}

// opStartup is one request of a wallet's start-up: ListKeyVersions pages (page size
// unset) until the end, then one GetObject per key, then again.
func opStartup(ctx context.Context, k *worker) error {
	if k.listing || k.next >= len(k.keys) {
		if !k.listing {
			k.listing, k.keys, k.next, k.token = true, k.keys[:0], 0, ""
		}
		keys, token, err := k.c.list(ctx, k.w, k.storeID, k.token, 0)
		if err != nil {
			return err
		}
		k.keys = append(k.keys, keys...)
		k.token = token
		if token == "" {
			k.listing = false
			k.cycles++
			if len(k.keys) != k.sz.StartupKeys {
				return fmt.Errorf("startup listed %d keys, want %d", len(k.keys), k.sz.StartupKeys)
			}
		}
		return nil
	}
	_, err := k.c.get(ctx, k.w, k.storeID, k.keys[k.next])
	k.next++
	return err
}

// opMix is LDK Node's steady state: mostly small channel-monitor updates, written once
// and deleted later, some channel monitors and channel-manager writes of tens to
// hundreds of KB, rarely a multi-MB network graph or scorer, and few reads.
func opMix(ctx context.Context, k *worker) error {
	scale := func(n int) int { return max(1, int(float64(n)*k.sz.MixScale)) }
	put := func(key string, size int) error {
		return k.c.put(ctx, k.w, k.storeID, []*vssv1.KeyValue{{Key: key, Version: -1, Value: k.value(size)}})
	}
	switch r := k.rng.Float64(); {
	case r < 0.60: // monitor update, 200 B to 4 KB
		k.seq++
		key := fmt.Sprintf("monitor_updates/%d/%d", k.seq%8, k.seq)
		if err := put(key, 200+k.rng.IntN(3900)); err != nil {
			return err
		}
		k.updates = append(k.updates, key)
		return nil
	case r < 0.75 && len(k.updates) > 0: // the update is folded into its monitor: delete it
		key := k.updates[0]
		k.updates = k.updates[1:]
		return k.c.del(ctx, k.w, k.storeID, key)
	case r < 0.90: // channel monitor, 20 to 200 KB
		return put(fmt.Sprintf("monitors/%d", k.rng.IntN(8)), scale(20<<10+k.rng.IntN(180<<10)))
	case r < 0.98: // channel manager, 100 KB
		return put("manager", scale(100<<10))
	case r < 0.995: // read back a monitor
		_, err := k.c.get(ctx, k.w, k.storeID, "manager")
		if err != nil && k.seq < 100 { // not written yet this early
			return nil
		}
		return err
	default: // network graph or scorer, 2 to 5 MB
		return put([]string{"network_graph", "scorer"}[k.rng.IntN(2)], scale(2<<20+k.rng.IntN(3<<20)))
	}
}

func opLarge(ctx context.Context, k *worker) error {
	return k.c.put(ctx, k.w, k.storeID, []*vssv1.KeyValue{{Key: "large", Version: -1, Value: k.value(k.sz.Large)}})
}

// putMany writes n keys prefix0..prefix(n-1) in requests of up to 1000 items.
func putMany(ctx context.Context, c client, w *wallet, storeID string, n, size int, prefix string) error {
	val := make([]byte, size)
	_, _ = rand.Read(val)
	for start := 0; start < n; start += 1000 {
		items := make([]*vssv1.KeyValue, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			items = append(items, &vssv1.KeyValue{Key: fmt.Sprintf("%s%d", prefix, i), Version: -1, Value: val})
		}
		if err := c.put(ctx, w, storeID, items); err != nil {
			return err
		}
	}
	return nil
}

// seedAll runs seed for every wallet into storeID, a few at a time.
func seedAll(ctx context.Context, s *Scenario, c client, ws []*wallet, storeID string, sz Sizes) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
		sem  = make(chan struct{}, 8)
	)
	for _, w := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.seed(ctx, c, w, storeID, sz); err != nil {
				mu.Lock()
				if errs == nil {
					errs = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
