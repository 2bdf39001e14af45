package bench

import (
	"context"
	"crypto/rand"
	"net/http"
	"sync"
	"time"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// encryptedBinding is the binding that runs the scenarios through the Go client's
// encryption layer: client/encrypted's Store over vssclient.Client (Connect, binary),
// so each request also obfuscates its key names and seals or opens and verifies its
// values on the load generator's side, as an application built on the client does.
const encryptedBinding = "connect-encrypted"

// isEncrypted reports whether binding b encrypts on the client's side; its seeded
// scenarios read a store of their own (the others hold plaintext).
func isEncrypted(b string) bool { return b == encryptedBinding }

// seededStoreID is the store a seeded scenario reads through binding b.
func seededStoreID(sc *Scenario, b string) string {
	if isEncrypted(b) {
		return sc.Name + "-encrypted"
	}
	return sc.Name
}

// encryptedClient is a client whose wallets each use an encrypted.Store with keys of
// their own.
type encryptedClient struct {
	root string
	hc   *http.Client

	mu     sync.Mutex
	stores map[*wallet]*encrypted.Store
}

func newEncrypted(root string, hc *http.Client) *encryptedClient {
	return &encryptedClient{root: root, hc: hc, stores: map[*wallet]*encrypted.Store{}}
}

func (c *encryptedClient) closeIdle() { c.hc.CloseIdleConnections() }

// store returns w's encrypted store, made on first use. The wallet signs as the other
// bindings do (wallet.auth); no retries, so a failure counts.
func (c *encryptedClient) store(w *wallet) *encrypted.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stores[w]; ok {
		return s
	}
	auth := vssclient.HeaderFunc(func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": []string{w.auth()}}, nil
	})
	cl := vssclient.New(c.root, vssclient.WithHTTPClient(c.hc), vssclient.WithHeaders(auth),
		vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: 1}), vssclient.WithTimeout(2*time.Minute))
	s := encrypted.NewStore(cl, w.encryptionKeys())
	c.stores[w] = s
	return s
}

func (c *encryptedClient) get(ctx context.Context, w *wallet, storeID, key string) ([]byte, error) {
	v, _, err := c.store(w).Get(ctx, storeID, key)
	return v, err
}

func (c *encryptedClient) put(ctx context.Context, w *wallet, storeID string, items []*vssv1.KeyValue) error {
	its := make([]encrypted.Item, len(items))
	for i, it := range items {
		its[i] = encrypted.Item{Key: it.GetKey(), Value: it.GetValue(), Version: it.GetVersion()}
	}
	return c.store(w).Put(ctx, storeID, its...)
}

func (c *encryptedClient) del(ctx context.Context, w *wallet, storeID, key string) error {
	return c.store(w).Delete(ctx, storeID, key, -1)
}

func (c *encryptedClient) list(ctx context.Context, w *wallet, storeID, token string, pageSize int32) ([]string, string, error) {
	page, next, err := c.store(w).ListPage(ctx, storeID, token, pageSize)
	if err != nil {
		return nil, "", err
	}
	keys := make([]string, len(page))
	for i, kv := range page {
		keys[i] = kv.Key
	}
	return keys, next, nil
}

// encryptionKeys returns the wallet's encryption keys, from a random VSS seed made on
// first use.
func (w *wallet) encryptionKeys() encrypted.Keys {
	w.keysOnce.Do(func() {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		w.keys = encrypted.KeysFromVSSSeed(seed)
	})
	return w.keys
}
