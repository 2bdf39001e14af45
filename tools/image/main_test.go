package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImage builds vss-server's image twice from one binary, checks that both tarballs
// are the same bytes, inspects the configuration a container engine would run, then
// unpacks the layer and runs the server from it as the image's user with the image's
// environment (but on loopback), and probes it with the image's healthcheck command.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vss-server")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-X main.version=v0.0.0-image", "-o", bin, "./cmd/vss-server")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build vss-server: %v\n%s", err, out)
	}
	o := Options{Binary: bin, Arch: runtime.GOARCH, Version: "v0.0.0-image", Revision: "0123456789abcdef",
		Created: time.Unix(1700000000, 0).UTC(), Tag: "vss-server:test",
		Licenses: []string{"../../LICENSE", "../../LICENSE-MIT", "../../LICENSE-APACHE"}}
	var sums [2][32]byte
	var path string
	for i := range sums {
		img, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(dir, "image"+string(rune('a'+i))+".tar")
		if err := Write(path, o.Tag, img); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(data)
	}
	if sums[0] != sums[1] {
		t.Fatal("two builds of the same binary and options differ: the image is not reproducible")
	}

	in, img, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	c := in.Config
	t.Logf("image %s, %d layer(s)", in.Digest, len(in.Layers))
	switch {
	case c.Config.User != "65532:65532":
		t.Errorf("user %q, want 65532:65532 (not root)", c.Config.User)
	case !slices.Equal(c.Config.Entrypoint, []string{"/usr/local/bin/vss-server"}):
		t.Errorf("entrypoint %q", c.Config.Entrypoint)
	case c.Config.Healthcheck == nil || !slices.Equal(c.Config.Healthcheck.Test, []string{"CMD", "/usr/local/bin/vss-server", "healthcheck"}):
		t.Errorf("healthcheck %+v", c.Config.Healthcheck)
	case c.Architecture != runtime.GOARCH || c.OS != "linux":
		t.Errorf("platform %s/%s", c.OS, c.Architecture)
	case c.Config.Labels["org.opencontainers.image.version"] != "v0.0.0-image" || c.Config.Labels["org.opencontainers.image.revision"] != "0123456789abcdef":
		t.Errorf("labels %v", c.Config.Labels)
	case !c.Created.Time.Equal(o.Created):
		t.Errorf("created %v, want the commit's time %v", c.Created, o.Created)
	case c.RootFS.Type != "layers" || len(c.RootFS.DiffIDs) != 1:
		t.Errorf("rootfs %+v, want type layers with one diff id", c.RootFS)
	case len(in.Layers) != 1:
		t.Errorf("%d layers, want 1", len(in.Layers))
	}
	if _, ok := c.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.Config.ExposedPorts)
	}
	if !slices.Contains(c.Config.Env, "VSS_DATA_DIR=/data") || !slices.Contains(c.Config.Env, "VSS_LISTEN=0.0.0.0:8080") {
		t.Errorf("env %v", c.Config.Env)
	}

	// Unpack the layer as a container engine would.
	root := filepath.Join(dir, "rootfs")
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[strings.TrimSuffix(h.Name, "/")] = h
		target := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, data, os.FileMode(h.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
		}
		if !h.ModTime.Equal(o.Created) {
			t.Errorf("%s has time %v, want %v", h.Name, h.ModTime, o.Created)
		}
	}
	for _, want := range []string{"usr/local/bin/vss-server", "etc/passwd", "etc/group", "data", "tmp", "usr/share/doc/vss-server/LICENSE-APACHE"} {
		if entries[want] == nil {
			t.Errorf("the image has no %s", want)
		}
	}
	if d := entries["data"]; d == nil || d.Uid != 65532 || d.Mode&0o777 != 0o700 {
		t.Errorf("/data: %+v, want owned by 65532 with mode 0700", d)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if !strings.Contains(string(passwd), "vss:x:65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532: %q", passwd)
	}

	// Run the server from the unpacked image, as 65532 when the test may switch users.
	server := filepath.Join(root, "usr", "local", "bin", "vss-server")
	data := filepath.Join(root, "data")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65532, Gid: 65532}
		for _, p := range []string{filepath.Dir(dir), dir, root, filepath.Join(root, "usr"), filepath.Join(root, "usr", "local"), filepath.Join(root, "usr", "local", "bin")} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(data, 65532, 65532); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := []string{"VSS_LISTEN=" + addr, "VSS_DATA_DIR=" + data}
	for _, e := range c.Config.Env {
		if !strings.HasPrefix(e, "VSS_LISTEN=") && !strings.HasPrefix(e, "VSS_DATA_DIR=") {
			env = append(env, e)
		}
	}
	healthcheck := func() (string, error) {
		cmd := exec.Command(server, "healthcheck")
		cmd.Env, cmd.SysProcAttr = env, &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := healthcheck(); err == nil {
		t.Fatalf("healthcheck passed with no server: %s", out)
	}
	var logs bytes.Buffer
	srv := exec.Command(server, "--auth", "none")
	srv.Env, srv.Dir, srv.Stdout, srv.Stderr = env, data, &logs, &logs
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := healthcheck()
		if err == nil {
			t.Logf("healthcheck: %s", strings.TrimSpace(out))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server from the image never became ready: %v %s\nits log:\n%s", err, out, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A write and a read through Connect, stored in the image's data directory.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(method, body string) string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/vss.v1.VssService/"+method, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", method, resp.Status, out)
		}
		return string(out)
	}
	call("PutObjects", `{"storeId":"s","transactionItems":[{"key":"k","value":"aGk="}]}`)
	var got struct {
		Value struct{ Value string } `json:"value"`
	}
	if err := json.Unmarshal([]byte(call("GetObject", `{"storeId":"s","key":"k"}`)), &got); err != nil || got.Value.Value != "aGk=" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	files, _ := os.ReadDir(data)
	if len(files) == 0 {
		t.Error("the server stored nothing in the image's data directory")
	}
	if cred != nil {
		st, err := os.Stat(filepath.Join(data, files[0].Name()))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != 65532 {
			t.Errorf("the store's files are not the image user's: %v", err)
		}
	}
}
