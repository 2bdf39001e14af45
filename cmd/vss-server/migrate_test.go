package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/pgtest"
)

// TestMigrateFromReferenceServer does what the README's "Migrating from the reference
// server" section tells an operator to do. It prepares a database the way the reference
// server leaves it (its schema and its writes), then starts the real vss-server binary
// with the reference server's configuration file as the first argument and its
// environment variables on top, and checks that the existing data is served over the
// VSS HTTP API to JWTs signed by the key in VSS_JWT_RSA_PEM, that the log goes to
// VSS_LOG_FILE, that the reference server's tables are left as they were, and that a
// missing VSS database is created.
func TestMigrateFromReferenceServer(t *testing.T) {
	bin := buildServer(t)
	admin := pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{})
	adminURL, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	execAt(t, admin, "CREATE DATABASE vss")
	vssURL := *adminURL
	vssURL.Path = "/vss"
	for _, f := range []string{"reference_v2.sql", "reference_data.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "storage", "postgres", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		execAt(t, vssURL.String(), string(b))
	}
	bookkeeping := queryStrings(t, vssURL.String(), `SELECT 'version ' || db_version FROM vss_db_version
		UNION ALL SELECT 'upgrade ' || upgrade_from FROM vss_db_upgrades ORDER BY 1`)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "vss.log")
	env := map[string]string{
		// The file says 127.0.0.1:8080 and 127.0.0.1:5432; the variables win, as
		// with the reference server.
		"VSS_BIND_ADDRESS": freeAddr(t),
		"VSS_PSQL_ADDRESS": adminURL.Host,
		"VSS_JWT_RSA_PEM":  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"VSS_LOG_FILE":     logPath,
	}
	config := filepath.Join("testdata", "vss-server-config.toml")
	base := "http://" + env["VSS_BIND_ADDRESS"] + "/vss"
	token := func(sub string, signer *rsa.PrivateKey) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(signer)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	stop := runServer(t, bin, []string{config}, env)
	alice := token("alice", key)
	var got vssv1.GetObjectResponse
	if status := vssCall(t, base, "getObject", alice, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "k3"}, &got); status != http.StatusOK ||
		got.GetValue().GetKey() != "k3" || string(got.GetValue().GetValue()) != "k3-c" || got.GetValue().GetVersion() != 3 {
		t.Fatalf("alice/wallet/k3: %d %v", status, &got)
	}
	var list vssv1.ListKeyVersionsResponse
	if status := vssCall(t, base, "listKeyVersions", alice, &vssv1.ListKeyVersionsRequest{StoreId: "wallet"}, &list); status != http.StatusOK {
		t.Fatalf("listKeyVersions: %d", status)
	}
	var keys []string
	for _, kv := range list.GetKeyVersions() {
		keys = append(keys, fmt.Sprintf("%s@%d", kv.GetKey(), kv.GetVersion()))
	}
	if want := []string{"k1@1", "k4@1", "k3@3", "k2@2"}; !slices.Equal(keys, want) || list.GetGlobalVersion() != 5 {
		t.Fatalf("alice/wallet lists %v global %d, want %v global 5", keys, list.GetGlobalVersion(), want)
	}
	if status := vssCall(t, base, "getObject", token("bob", key), &vssv1.GetObjectRequest{StoreId: "wallet", Key: "b2"}, &got); status != http.StatusOK ||
		string(got.GetValue().GetValue()) != "b2-b" || got.GetValue().GetVersion() != 2 {
		t.Fatalf("bob/wallet/b2: %d %v", status, &got)
	}
	if status := vssCall(t, base, "getObject", token("bob", key), &vssv1.GetObjectRequest{StoreId: "wallet", Key: "k1"}, &got); status != http.StatusNotFound {
		t.Fatalf("bob reads alice's key: %d", status)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if status := vssCall(t, base, "getObject", token("alice", other), &vssv1.GetObjectRequest{StoreId: "wallet", Key: "k1"}, &got); status != http.StatusUnauthorized {
		t.Fatalf("a JWT of another key: %d, want 401", status)
	}
	gv := int64(5)
	if status := vssCall(t, base, "putObjects", alice, &vssv1.PutObjectRequest{StoreId: "wallet", GlobalVersion: &gv,
		TransactionItems: []*vssv1.KeyValue{{Key: "k3", Version: 3, Value: []byte("k3-d")}}}, &vssv1.PutObjectResponse{}); status != http.StatusOK {
		t.Fatalf("putObjects: %d", status)
	}
	stop()

	if got := queryStrings(t, vssURL.String(), `SELECT 'version ' || db_version FROM vss_db_version
		UNION ALL SELECT 'upgrade ' || upgrade_from FROM vss_db_upgrades ORDER BY 1`); !slices.Equal(got, bookkeeping) {
		t.Errorf("the reference server's bookkeeping changed: %v, then %v", bookkeeping, got)
	}
	if got := queryStrings(t, vssURL.String(), "SELECT convert_from(value, 'UTF8') || '@' || version FROM vss_db WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'k3'"); !slices.Equal(got, []string{"k3-d@4"}) {
		t.Errorf("k3 in vss_db after our write: %v", got)
	}
	tables := queryStrings(t, vssURL.String(), "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
	t.Logf("tables after the switch: %v", tables)
	for _, want := range []string{"vss_db", "vss_db_upgrades", "vss_db_version", "vss_schema_migrations"} {
		if !slices.Contains(tables, want) {
			t.Errorf("table %s missing: %v", want, tables)
		}
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serving VSS", "sentry_config.environment is ignored", "level=DEBUG"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the log file lacks %q:\n%s", want, log)
		}
	}

	// A VSS database that does not exist is created from the default database.
	env["VSS_PSQL_VSS_DB"] = "vss_new"
	stop = runServer(t, bin, []string{config}, env)
	if status := vssCall(t, base, "putObjects", alice, &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "fresh", Value: []byte("v")}}}, &vssv1.PutObjectResponse{}); status != http.StatusOK {
		t.Fatalf("putObjects on the new database: %d", status)
	}
	stop()
	newURL := *adminURL
	newURL.Path = "/vss_new"
	if got := queryStrings(t, newURL.String(), "SELECT user_token || '/' || key FROM vss_db"); !slices.Equal(got, []string{"alice/fresh"}) {
		t.Errorf("vss_new holds %v", got)
	}
}

// buildServer builds the vss-server binary of this package into a temporary directory,
// with the -ldflags given, if any.
func buildServer(t *testing.T, ldflags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vss-server")
	args := []string{"build", "-o", bin}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runServer starts bin with args and, besides the environment of the test minus every
// VSS_ variable, env; waits until it answers /healthz; and returns a function that
// stops it with SIGTERM and checks that it exits cleanly.
func runServer(t *testing.T, bin string, args []string, env map[string]string) (stop func()) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VSS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("vss-server exited with %v:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("vss-server did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	health := "http://" + env["VSS_BIND_ADDRESS"] + "/healthz"
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("vss-server exited at start-up: %v\n%s", err, stderr.String())
		default:
		}
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vss-server not healthy within 30s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vssCall posts req to the VSS HTTP API method with a bearer token, decodes a 200
// answer into resp, and returns the status.
func vssCall(t *testing.T, base, method, token string, req, resp proto.Message) int {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hreq, err := http.NewRequest(http.MethodPost, base+"/"+method, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	hreq.Header.Set("Authorization", "Bearer "+token)
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(hresp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if hresp.StatusCode == http.StatusOK {
		if err := proto.Unmarshal(b, resp); err != nil {
			t.Fatal(err)
		}
	}
	return hresp.StatusCode
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// execAt runs sql (one or more statements) on the database at dbURL.
func execAt(t *testing.T, dbURL, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// queryStrings returns the one text column of the rows of query at dbURL.
func queryStrings(t *testing.T, dbURL, query string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
