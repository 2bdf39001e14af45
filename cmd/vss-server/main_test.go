package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/app"
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
	var help bytes.Buffer
	if _, _, err := parseConfig([]string{"--help"}, env(nil), &help); err == nil || !strings.Contains(help.String(), "VSS_DATABASE_URL") {
		t.Fatalf("--help: %v\n%s", err, help.String())
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
