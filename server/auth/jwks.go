package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// DefaultJWKSRefresh is how often a JSON Web Key Set is read again when JWTConfig does
// not say.
const DefaultJWKSRefresh = time.Hour

const (
	// maxJWKSBytes caps a JWKS document: real ones hold a few keys in a few KiB.
	maxJWKSBytes = 1 << 20
	// jwksFetchTimeout bounds one read of a JWKS URL.
	jwksFetchTimeout = 10 * time.Second
	// maxOnDemandGap is the shortest time between two refreshes caused by tokens whose
	// kid is unknown; a shorter refresh interval shortens it too. It is well under the
	// 15 seconds for which LDK Node retries a refused request, so a wallet whose token
	// names a freshly published key gets through on a retry.
	maxOnDemandGap = 10 * time.Second
)

// verifierKey is one key a JWT may be signed with: the only algorithm it verifies and,
// for keys from a JWKS or a proving issuer, its key id.
type verifierKey struct {
	kid string
	alg string
	key crypto.PublicKey
}

// keySnapshot is the JWKS keys at one time; gen grows with every successful refresh.
type keySnapshot struct {
	gen  uint64
	keys []verifierKey
}

// jwksSource is where one JWKS is read from.
type jwksSource struct {
	name string // for logs and errors: never a credential
	load func(ctx context.Context) ([]byte, error)
}

// jwks holds the keys of one or more JWKS sources and refreshes them in one goroutine,
// which ends with the context given to newJWKS: periodically, and early (rate limited)
// when a token names an unknown kid, so that a rotated key works soon.
//
// Requests never wait for a refresh: they read the current snapshot, which only the
// refresh goroutine replaces, and a token with an unknown kid is answered from it at
// once while the goroutine fetches in the background. So a flood of tokens with made-up
// kids costs at most one fetch per onDemandGap, and neither the tokens nor anyone else
// queue behind a slow JWKS endpoint.
type jwks struct {
	sources     []jwksSource
	interval    time.Duration
	onDemandGap time.Duration
	log         *slog.Logger

	// bySource and gen belong to the refresh goroutine once newJWKS has returned.
	bySource [][]verifierKey
	gen      uint64

	current atomic.Pointer[keySnapshot]
	wanted  chan struct{} // holds one signal when a token named an unknown kid
	stopped chan struct{} // closed when the refresh goroutine has returned
}

// newJWKS reads every source once (any failure is an error: a server should not start
// with keys it cannot read) and starts the refresh goroutine.
func newJWKS(ctx context.Context, sources []jwksSource, interval time.Duration, log *slog.Logger) (*jwks, error) {
	j := &jwks{
		sources:     sources,
		interval:    interval,
		onDemandGap: min(interval, maxOnDemandGap),
		log:         log,
		bySource:    make([][]verifierKey, len(sources)),
		wanted:      make(chan struct{}, 1),
		stopped:     make(chan struct{}),
	}
	for i, src := range sources {
		keys, err := j.load(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.name, err)
		}
		j.bySource[i] = keys
	}
	j.publish()
	go j.run(ctx)
	return j, nil
}

// snapshot returns the current keys.
func (j *jwks) snapshot() *keySnapshot { return j.current.Load() }

// publish makes the keys of every source the current snapshot; only the refresh
// goroutine (or newJWKS, before it starts) calls it.
func (j *jwks) publish() {
	var all []verifierKey
	for _, keys := range j.bySource {
		all = append(all, keys...)
	}
	j.current.Store(&keySnapshot{gen: j.gen, keys: all})
}

// unknownKID asks for an early refresh because a token named a kid no key has. It never
// blocks: the refresh goroutine does the work, at most once per onDemandGap.
func (j *jwks) unknownKID() {
	select {
	case j.wanted <- struct{}{}:
	default: // a request is pending already
	}
}

// run refreshes the keys every interval, and after unknownKID (at once, or when
// onDemandGap has passed since the last early refresh), until ctx ends.
func (j *jwks) run(ctx context.Context) {
	defer close(j.stopped)
	ticker := time.NewTicker(j.interval)
	defer ticker.Stop()
	var lastEarly time.Time
	var early <-chan time.Time // set while an early refresh waits for the gap
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			j.refresh(ctx)
		case <-j.wanted:
			if early != nil {
				continue // scheduled already
			}
			if wait := j.onDemandGap - time.Since(lastEarly); !lastEarly.IsZero() && wait > 0 {
				early = time.After(wait)
				continue
			}
			lastEarly = time.Now()
			j.refresh(ctx)
		case <-early:
			early = nil
			lastEarly = time.Now()
			j.refresh(ctx)
		}
	}
}

// refresh reads every source again; a source that fails keeps its previous keys.
func (j *jwks) refresh(ctx context.Context) {
	changed := false
	for i, src := range j.sources {
		keys, err := j.load(ctx, src)
		if err != nil {
			if ctx.Err() == nil {
				j.log.WarnContext(ctx, "JWKS refresh failed; keeping the previous keys", "source", src.name, "err", err)
			}
			continue
		}
		j.bySource[i] = keys
		changed = true
	}
	if changed {
		j.gen++
		j.publish()
	}
}

// load reads and parses one source.
func (j *jwks) load(ctx context.Context, src jwksSource) ([]verifierKey, error) {
	data, err := src.load(ctx)
	if err != nil {
		return nil, err
	}
	return j.parse(ctx, src.name, data)
}

// parse turns a JWKS document into the keys this package can verify with. Keys it
// cannot use (encryption keys, symmetric keys, other curves, short RSA keys, a declared
// alg other than the one pinned to the key type) are skipped and logged; a document
// with no usable key is an error.
func (j *jwks) parse(ctx context.Context, name string, data []byte) ([]verifierKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var keys []verifierKey
	for i, m := range set.Keys {
		skip := func(reason string) {
			j.log.WarnContext(ctx, "skipping a JWKS key", "source", name, "index", i, "kid", m.KID, "kty", m.KTY, "reason", reason)
		}
		if m.USE != "" && m.USE != jwkset.UseSig {
			skip("not a signing key (use " + string(m.USE) + ")")
			continue
		}
		if m.KTY == jwkset.KtyOct {
			skip("symmetric keys are never accepted")
			continue
		}
		// Private material is never wanted here: parse the public part only.
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			skip(err.Error())
			continue
		}
		alg, key, err := verificationKey(jwk.Key())
		if err != nil {
			skip(err.Error())
			continue
		}
		if m.ALG != "" && string(m.ALG) != alg {
			skip("declared alg " + string(m.ALG) + " is not " + alg)
			continue
		}
		keys = append(keys, verifierKey{kid: m.KID, alg: alg, key: key})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the JSON Web Key Set has no usable signing key (of %d)", len(set.Keys))
	}
	return keys, nil
}

// fileSource reads a JWKS from a file, again at every refresh (so a rotated file, such
// as a mounted secret, takes effect without a restart).
func fileSource(path string) jwksSource {
	return jwksSource{
		name: "JWKS file " + path,
		load: func(context.Context) ([]byte, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return readCapped(f)
		},
	}
}

// urlSource fetches a JWKS from an http or https URL.
func urlSource(rawURL string, client *http.Client) (jwksSource, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return jwksSource{}, errors.New("JWKS URL does not parse")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return jwksSource{}, fmt.Errorf("JWKS URL %s is not an absolute http or https URL", u.Redacted())
	}
	name := "JWKS URL " + u.Redacted()
	return jwksSource{
		name: name,
		load: func(ctx context.Context) ([]byte, error) {
			ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Accept", "application/jwk-set+json, application/json")
			resp, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("HTTP status %s", resp.Status)
			}
			return readCapped(resp.Body)
		},
	}, nil
}

// readCapped reads a JWKS document of at most maxJWKSBytes.
func readCapped(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("the JSON Web Key Set is larger than %d bytes", maxJWKSBytes)
	}
	return data, nil
}
