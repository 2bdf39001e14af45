package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/server/auth"
)

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, _, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.DatabaseURL != "" || cfg.DataDir != "data" || cfg.Auth != (app.AuthConfig{JWTLeeway: 30 * time.Second, LNURLTokenTTL: 24 * time.Hour}) || cfg.MaxBodyBytes != 64<<20 {
		t.Fatalf("defaults = %+v", cfg)
	}
	cfg, _, err = parseConfig(nil, env(map[string]string{
		"VSS_LISTEN": "0.0.0.0:9", "VSS_DATABASE_URL": "memory:", "VSS_AUTH": "none", "VSS_MAX_BODY_BYTES": "10", "VSS_DATA_DIR": "/d",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9" || cfg.DatabaseURL != "memory:" || cfg.Auth.Schemes != "none" || cfg.MaxBodyBytes != 10 || cfg.DataDir != "/d" {
		t.Fatalf("from the environment = %+v", cfg)
	}
	cfg, _, err = parseConfig(nil, env(map[string]string{"VSS_AUTH_JWT_PUBKEY_SUBJECTS": "true"}), io.Discard)
	if err != nil || !cfg.Auth.JWTPubkeySubjects {
		t.Fatalf("VSS_AUTH_JWT_PUBKEY_SUBJECTS=true: %+v %v", cfg.Auth, err)
	}
	cfg, _, err = parseConfig([]string{"--auth-jwt-pubkey-subjects"}, env(nil), io.Discard)
	if err != nil || !cfg.Auth.JWTPubkeySubjects {
		t.Fatalf("--auth-jwt-pubkey-subjects: %+v %v", cfg.Auth, err)
	}
	cfg, _, err = parseConfig([]string{"--listen", "127.0.0.1:1", "--auth", "none"}, env(map[string]string{"VSS_LISTEN": "0.0.0.0:9"}), io.Discard)
	if err != nil || cfg.Listen != "127.0.0.1:1" {
		t.Fatalf("flags must win over the environment: %+v %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"--max-body-bytes", "lots"}, {"--max-body-bytes", "0"}, {"--log-level", "loud"},
		{"--log-format", "xml"}, {"--no-such-flag"}, {"extra-argument"},
	} {
		if _, _, err := parseConfig(bad, env(nil), io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", bad)
		}
	}
	if text := helpText(t); !strings.Contains(text, "VSS_DATABASE_URL") {
		t.Fatalf("--help:\n%s", text)
	}
}

// start runs the server in-process on a free loopback port and returns its address and
// a function that stops it and returns Run's result.
func start(t *testing.T, cfg app.Config) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	cfg.Listen = "127.0.0.1:0"
	cfg.Ready = func(a net.Addr) { ready <- a }
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- app.Run(ctx, cfg, log) }()
	select {
	case a := <-ready:
		stop := func() error { cancel(); return <-done }
		t.Cleanup(func() { cancel() })
		return a.String(), stop
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	return "", nil
}

var none = app.AuthConfig{Schemes: "none"}

func TestRunRefusesUnsafeOrUnknownConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, cfg := range []app.Config{
		{Listen: "127.0.0.1:0", DatabaseURL: "memory:", Auth: app.AuthConfig{Schemes: "magic"}},                // unknown scheme
		{Listen: "127.0.0.1:0", DatabaseURL: "memory:", Auth: app.AuthConfig{Schemes: "none,signature"}},       // none mixed in
		{Listen: "127.0.0.1:0", DatabaseURL: "memory:", Auth: app.AuthConfig{Schemes: "jwt"}},                  // jwt without keys
		{Listen: "127.0.0.1:0", DatabaseURL: "memory:", Auth: app.AuthConfig{LNURLAuth: true}},                 // LNURL without a public URL
		{Listen: "127.0.0.1:0", DatabaseURL: "memory:", Auth: app.AuthConfig{JWTPublicKeyPEM: "not a key"}},    // bad key
		{Listen: "127.0.0.1:0", DatabaseURL: "memory:", Auth: app.AuthConfig{Schemes: "signature", JWKS: "x"}}, // jwt configured, not enabled
		{Listen: "127.0.0.1:0", DatabaseURL: "mysql://x", Auth: none},                                          // unknown database
		{Listen: "127.0.0.1:0", DatabaseURL: "", DataDir: "", Auth: none},                                      // nowhere to store
		{Listen: "256.0.0.1:99999", DatabaseURL: "memory:", Auth: none},                                        // bad address
		{Listen: "127.0.0.1:0", DatabaseURL: "postgres://127.0.0.1:1/x", Auth: none},                           // unreachable
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := app.Run(ctx, cfg, log)
		cancel()
		if err == nil {
			t.Errorf("Run(%+v) succeeded", cfg)
		}
	}
}

// TestGracefulShutdown stops the server while a request is still uploading its body:
// the request completes, then Run returns cleanly and the data is on disk.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	addr, stop := start(t, app.Config{DataDir: dir, Auth: none, MaxBodyBytes: 1 << 20})
	body, _ := proto.Marshal(&vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("slow upload")}}})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/vss/putObjects", pr)
	req.ContentLength = int64(len(body))
	result := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		result <- resp
	}()
	_, _ = pw.Write(body[:5])
	time.Sleep(200 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(200 * time.Millisecond)
	_, _ = pw.Write(body[5:])
	_ = pw.Close()
	resp := <-result
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("in-flight request during shutdown: %v", resp)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run after shutdown: %v", err)
	}
	// The write is durable: a new server on the same directory reads it.
	addr, stop = start(t, app.Config{DataDir: dir, Auth: none})
	defer stop()
	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	r, err := http.Post("http://"+addr+"/vss/getObject", "application/octet-stream", bytes.NewReader(get))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	out, _ := io.ReadAll(r.Body)
	var got vssv1.GetObjectResponse
	if err := proto.Unmarshal(out, &got); err != nil || string(got.GetValue().GetValue()) != "slow upload" {
		t.Fatalf("after restart: %d %v %v", r.StatusCode, &got, err)
	}
}

// TestREADMECurlExamples runs the curl examples of the README against a fresh server
// and checks each answer the README shows, so the README stays true.
func TestREADMECurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to check the README's examples: ", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	section = section[strings.Index(section, "## Try it with curl"):]
	section = section[strings.Index(section, "```sh")+5:]
	section = section[:strings.Index(section, "```")]

	addr, stop := start(t, app.Config{DatabaseURL: "memory:", Auth: none})
	defer stop()

	// Each command is a curl line with its continuations, optionally followed by the
	// answer as a "# " comment.
	lines := strings.Split(section, "\n")
	ran := 0
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "curl ") {
			continue
		}
		cmd := lines[i]
		for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
			i++
			cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(lines[i])
		}
		cmd = strings.ReplaceAll(cmd, "127.0.0.1:8080", addr)
		out, err := exec.Command("bash", "-c", cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		ran++
		// protojson varies its whitespace on purpose; compare compacted JSON.
		var compact bytes.Buffer
		if len(bytes.TrimSpace(out)) > 0 {
			if err := json.Compact(&compact, out); err != nil {
				t.Fatalf("%s: answer is not JSON: %s", cmd, out)
			}
		}
		out = compact.Bytes()
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "# {") {
			want := strings.TrimPrefix(lines[i+1], "# ")
			if strings.Contains(want, "...") {
				pattern := regexp.QuoteMeta(strings.ReplaceAll(want, "...", "\x00"))
				if !regexp.MustCompile("^" + strings.ReplaceAll(pattern, "\x00", ".*") + "$").Match(bytes.TrimSpace(out)) {
					t.Errorf("%s\n got: %s\nwant: %s", cmd, out, want)
				}
			} else if strings.TrimSpace(string(out)) != want {
				t.Errorf("%s\n got: %s\nwant: %s", cmd, out, want)
			}
		}
	}
	if ran < 6 {
		t.Fatalf("found %d curl examples in the README, want at least 6", ran)
	}
}

// TestLNURLAuthEndToEnd runs what a wallet with vss-client-ng's LNURL-auth provider does
// against a server started with --lnurl-auth: fetch the LNURL, sign k1 with a real
// secp256k1 key, exchange it for a JWT, then use the JWT for VSS calls. A used k1 is
// refused, and the token identifies the linking key as the user.
func TestLNURLAuthEndToEnd(t *testing.T) {
	const public = "https://vss.example.com"
	addr, stop := start(t, app.Config{DatabaseURL: "memory:", Auth: app.AuthConfig{LNURLAuth: true, PublicURL: public, LNURLTokenTTL: time.Hour}})
	defer stop()
	base := "http://" + addr
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	status, lnurl := get(base + "/auth/lnurl")
	if status != http.StatusOK || !strings.HasPrefix(string(lnurl), public+"/auth/lnurl/verify?tag=login&k1=") {
		t.Fatalf("GET /auth/lnurl: %d %s", status, lnurl)
	}
	u, err := url.Parse(string(lnurl))
	if err != nil {
		t.Fatal(err)
	}
	k1, err := hex.DecodeString(u.Query().Get("k1"))
	if err != nil || len(k1) != 32 {
		t.Fatalf("k1 %q", u.Query().Get("k1"))
	}
	linking, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	sig := ecdsa.Sign(linking, k1).Serialize()
	pub := hex.EncodeToString(linking.PubKey().SerializeCompressed())
	// The wallet calls the URL it was given; here the public base stands for our address.
	signed := strings.Replace(string(lnurl), public, base, 1) + "&sig=" + hex.EncodeToString(sig) + "&key=" + pub
	status, body := get(signed)
	var answer struct{ Token, Status, Reason string }
	if err := json.Unmarshal(body, &answer); err != nil || status != http.StatusOK || answer.Token == "" {
		t.Fatalf("verify: %d %s", status, body)
	}
	if status, body := get(signed); status == http.StatusOK || !strings.Contains(string(body), `"status":"ERROR"`) {
		t.Fatalf("replayed k1: %d %s", status, body)
	}

	// The token works for both bindings, and the user is the linking key.
	bearer := http.Header{"Authorization": {"Bearer " + answer.Token}}
	put, _ := proto.Marshal(&vssv1.PutObjectRequest{StoreId: "wallet", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("v")}}})
	req, _ := http.NewRequest(http.MethodPost, base+"/vss/putObjects", bytes.NewReader(put))
	req.Header = bearer.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("putObjects with the LNURL token: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/vss.v1.VssService/GetObject", strings.NewReader(`{"storeId":"wallet","key":"k"}`))
	req.Header = bearer.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"value":"dg=="`) {
		t.Fatalf("GetObject with the LNURL token: %d %s", resp.StatusCode, out)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(answer.Token, claims); err != nil || claims["sub"] != pub || claims["exp"] == nil {
		t.Fatalf("token claims %v: %v", claims, err)
	}
	// Without a token, or with a forged one, VSS calls are refused.
	req, _ = http.NewRequest(http.MethodPost, base+"/vss/putObjects", bytes.NewReader(put))
	req.Header.Set("Authorization", "Bearer "+answer.Token[:len(answer.Token)-4]+"AAAA")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
}

// TestSignatureAuthIsTheDefault starts the server with no authentication settings: it
// must demand signatures, accept a valid one and refuse an anonymous request.
func TestSignatureAuthIsTheDefault(t *testing.T) {
	addr, stop := start(t, app.Config{DatabaseURL: "memory:"})
	defer stop()
	get, _ := proto.Marshal(&vssv1.GetObjectRequest{Key: "global_version"})
	for _, tc := range []struct {
		header string
		want   int
	}{{"", http.StatusUnauthorized}, {auth.SignatureHeader(mustKey(t), time.Now()), http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/vss/getObject", bytes.NewReader(get))
		if tc.header != "" {
			req.Header.Set("authorization", tc.header) // header names are case-insensitive
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("Authorization %q: status %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
	}
}

func mustKey(t *testing.T) *secp256k1.PrivateKey {
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
