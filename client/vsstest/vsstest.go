// Package vsstest runs a real VSS server on loopback for tests, the way net/http/httptest
// runs an HTTP server: the complete server (both bindings, authentication, and
// optionally the LNURL-auth issuer) over an in-memory store, on a free port.
//
//	srv := vsstest.Start(t, vsstest.Config{})
//	c := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(key)))
package vsstest

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/govss/vss/server"
	"github.com/govss/vss/server/auth"
	"github.com/govss/vss/server/lnurlauth"
	"github.com/govss/vss/storage/sqlite"
)

// Config configures a test server. The zero value is a server that requires the
// signature scheme, as a production server does by default.
type Config struct {
	// NoAuth turns authentication off: every request is the same user.
	NoAuth bool
	// LNURLAuth serves the built-in LNURL-auth issuer at Server.LNURL and accepts the
	// JWTs it issues, besides signature headers. Its public URL is
	// http://localhost:<port>, so LNURLs it answers lead back to this server.
	LNURLAuth bool
	// TokenTTL is the lifetime of issued JWTs; zero means the issuer's default (24 h).
	TokenTTL time.Duration
	// Wrap, if set, wraps the server's handler: a test can count, delay or fail
	// requests before the real server sees them.
	Wrap func(http.Handler) http.Handler
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Feed configures the change feed (ListChanges, WatchChanges) and its streams; zero
	// fields take the server's defaults.
	Feed server.FeedOptions
}

// Server is a running test server.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:<port>: the Connect client's base
	// URL. The existing VSS HTTP API is at URL + "/vss".
	URL string
	// LNURL is the LNURL-auth endpoint, URL + "/auth/lnurl", when Config.LNURLAuth is
	// set; it is empty otherwise.
	LNURL string

	http  *httptest.Server
	store *sqlite.Store
	feed  *server.Feed
}

// New starts a test server. Close stops it.
func New(cfg Config) (*Server, error) {
	ctx := context.Background()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, err := sqlite.OpenMemory(ctx)
	if err != nil {
		return nil, fmt.Errorf("vsstest: open the in-memory store: %w", err)
	}
	ts := httptest.NewUnstartedServer(nil)
	fail := func(err error) (*Server, error) {
		ts.Close()
		store.Close()
		return nil, fmt.Errorf("vsstest: %w", err)
	}
	s := &Server{URL: "http://" + ts.Listener.Addr().String(), http: ts, store: store}

	var authorizer server.Authorizer = auth.NewSignature(time.Now)
	var routes func(*http.ServeMux)
	switch {
	case cfg.NoAuth:
		authorizer = server.NoAuth()
	case cfg.LNURLAuth:
		issuer, err := lnurlauth.New(ctx, lnurlauth.Config{
			PublicURL: fmt.Sprintf("http://localhost:%d", ts.Listener.Addr().(*net.TCPAddr).Port),
			Store:     store,
			TokenTTL:  cfg.TokenTTL,
			Logger:    log,
		})
		if err != nil {
			return fail(err)
		}
		// The issuer's tokens name keys their holders proved (as vss-server --lnurl-auth).
		jwt, err := auth.NewJWT(ctx, auth.JWTConfig{ProvingKeys: map[string]crypto.PublicKey{issuer.KeyID(): issuer.PublicKey()}, Logger: log})
		if err != nil {
			return fail(err)
		}
		authorizer = auth.Combine(jwt, authorizer)
		routes = issuer.Routes
		s.LNURL = s.URL + lnurlauth.LNURLPath
	}
	s.feed = server.NewFeed(store, cfg.Feed, log)
	handler, err := server.New(server.Options{Store: store, Authorizer: authorizer, Logger: log, Routes: routes, Feed: s.feed})
	if err != nil {
		return fail(err)
	}
	if cfg.Wrap != nil {
		handler = cfg.Wrap(handler)
	}
	ts.Config.Handler = handler
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // for gRPC clients
	ts.Config.Protocols = &protocols
	ts.Start()
	return s, nil
}

// Start starts a test server that stops when tb's test ends; it fails the test if the
// server cannot start.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// CloseClientConnections cuts every open connection, as a crashed instance or proxy
// would: calls in flight and change streams fail on the client's side.
func (s *Server) CloseClientConnections() { s.http.CloseClientConnections() }

// Close stops the server, waiting for requests in flight, and discards its data.
func (s *Server) Close() {
	s.feed.Close() // ends the change streams, which would hold Close up
	s.http.Close()
	s.store.Close()
}
