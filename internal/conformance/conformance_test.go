package conformance_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/govss/vss/internal/conformance"
	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// groupCommit is whether the stores of the tests commit concurrent writes together: on,
// as in the server, unless VSS_GROUP_COMMIT is off.
func groupCommit() bool {
	switch os.Getenv("VSS_GROUP_COMMIT") {
	case "off", "false", "0":
		return false
	}
	return true
}

// groupCommitStats returns what the group commit of store committed, if it has one.
func groupCommitStats(store storage.Store) (storage.GroupCommitStats, bool) {
	gs, ok := store.(interface {
		GroupCommitStats() storage.GroupCommitStats
	})
	if !ok {
		return storage.GroupCommitStats{}, false
	}
	return gs.GroupCommitStats(), true
}

// stores opens each store the server supports, fresh for one test.
var stores = []struct {
	name string
	open func(t *testing.T) storage.Store
}{
	{"postgres", func(t *testing.T) storage.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.WithGroupCommit(groupCommit()))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"embedded", func(t *testing.T) storage.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vss.db"), sqlite.WithGroupCommit(groupCommit()))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"memory", func(t *testing.T) storage.Store {
		s, err := sqlite.OpenMemory(context.Background(), sqlite.WithGroupCommit(groupCommit()))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// testAuth identifies users by a header so the suite can act as several users.
var testAuth = server.AuthorizerFunc(func(_ context.Context, h http.Header) (string, error) {
	if u := h.Get(conformance.UserHeader); u != "" {
		return u, nil
	}
	return "", server.AuthError("missing " + conformance.UserHeader + " header")
})

// serve starts the server for store on a loopback port, HTTP/1.1 and cleartext HTTP/2,
// and returns its base URL.
func serve(t testing.TB, store storage.Store, maxBody int64) string {
	t.Helper()
	return serveAuth(t, store, testAuth, maxBody)
}

// serveAuth is serve with authorizer in front of the service.
func serveAuth(t testing.TB, store storage.Store, authorizer server.Authorizer, maxBody int64) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := server.New(server.Options{Store: store, Authorizer: authorizer, Logger: log, MaxBodyBytes: maxBody})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = store.Close()
	})
	return "http://" + ln.Addr().String()
}

// TestConformance runs the whole contract against every store through every binding.
func TestConformance(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			base := serve(t, st.open(t), 0)
			for _, b := range conformance.Bindings(conformance.TestUser) {
				t.Run(b.Name, func(t *testing.T) {
					conformance.Run(t, b.New(base))
				})
			}
		})
	}
}

// TestBindingsShareData checks that both bindings see one service: what one writes, the
// others read, with the same versions.
func TestBindingsShareData(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			base := serve(t, st.open(t), 0)
			conformance.RunCrossBinding(t, base)
		})
	}
}
