package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// TestWatch follows a store from now while another device writes, then replays it from
// a cursor, as JSON too; a cursor the server does not hold is exit code 8.
func TestWatch(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	c := newCLI(t, srv.URL, "VSSCTL_STORE_ID", "s")
	c.ok("put", "before", "x") // before anyone followed: not in the feed

	// vssctl itself (the test binary, see TestMain), so that the writes can wait for it
	// to say where it started.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "watch", "--count", "3", "--values")
	cmd.Env = append(os.Environ(), "VSSCTL_TEST_MAIN=1", "VSSCTL_SERVER="+srv.URL, "VSSCTL_STORE_ID=s")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	started, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || started != "watching store \"s\" from cursor 1\n" {
		// The first call for a store holding a key starts its feed at 1.
		t.Fatalf("watch started with %q, %v", started, err)
	}
	c.ok("put", "--device-id", "phone", "k", "hello")
	c.ok("put", "--device-id", "phone", "k2", "again")
	c.ok("delete", "before")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch --count 3: %v", err)
	}
	// (A value is shown while its key still holds that version: these keep theirs.)
	want := "2\tput\tk\t1\tphone\t\"hello\"\n3\tput\tk2\t1\tphone\t\"again\"\n4\tdelete\tbefore\t1\t\n"
	if stdout.String() != want {
		t.Fatalf("watch --count 3 --values printed %q, want %q", stdout.String(), want)
	}
	if out := c.ok("watch", "--cursor", "3", "--count", "1", "--json"); !strings.Contains(out, `"key":"before"`) || !strings.Contains(out, `"deleted":true`) {
		t.Fatalf("watch --cursor 3 --json = %q", out)
	}
	c.fails(exitPrecondition, "list the store again", "watch", "--cursor", "0")
	c.fails(exitPrecondition, "list the store again", "watch", "--cursor", "100")
	c.fails(exitUsage, "--count", "watch", "--count", "0")
}

// TestLease takes, shows, renews and releases a lease, and fences writes with it.
func TestLease(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	c := newCLI(t, srv.URL, "VSSCTL_STORE_ID", "s", "VSSCTL_DEVICE_ID", "laptop")
	if out := c.ok("lease", "acquire", "node", "--ttl", "1m"); !strings.HasPrefix(out, "node\tlaptop\t1\t") {
		t.Fatalf("lease acquire = %q", out)
	}
	c.fails(exitPrecondition, `held by "laptop"`, "lease", "acquire", "node", "--holder", "phone")
	c.ok("put", "--lease", "node", "--lease-token", "1", "k", "v")
	c.ok("delete", "--lease", "node", "--lease-token", "1", "k")
	c.fails(exitPrecondition, "nothing was written", "put", "--lease", "node", "--lease-token", "2", "k", "v")
	if out := c.ok("lease", "renew", "node", "--lease-token", "1", "--ttl", "2m", "--json"); !strings.Contains(out, `"token":"1"`) || !strings.Contains(out, `"held":true`) {
		t.Fatalf("lease renew --json = %q", out)
	}
	c.ok("lease", "release", "node", "--lease-token", "1")
	if out := c.ok("lease", "get", "node"); out != "node\tfree\t1\n" {
		t.Fatalf("lease get after release = %q", out)
	}
	c.fails(exitPrecondition, "not held", "lease", "renew", "node", "--lease-token", "1")
	c.ok("put", "k2", "v")
	c.fails(exitPrecondition, "nothing was written", "delete", "--prefix", "", "--lease", "node", "--lease-token", "1")
	if out := c.ok("lease", "acquire", "node", "--holder", "phone"); !strings.HasPrefix(out, "node\tphone\t2\t") {
		t.Fatalf("lease acquire after release = %q", out)
	}

	c.fails(exitUsage, "--lease-token", "lease", "renew", "node")
	c.fails(exitUsage, "does not take --lease-token", "lease", "acquire", "node", "--lease-token", "1")
	c.fails(exitUsage, "together", "put", "--lease", "node", "k", "v")
	c.fails(exitUsage, "unknown action", "lease", "steal", "node")
	bare := newCLI(t, srv.URL, "VSSCTL_STORE_ID", "s")
	bare.fails(exitUsage, "--holder", "lease", "acquire", "other")

	// The changes name the device of each write.
	cl := vssclient.New(srv.URL)
	if _, err := cl.GetChangeCursor(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	c.ok("put", "--store-id", "t", "k", "v")
	changes, _, err := cl.ListChangesSince(context.Background(), &vssv1.ListChangesRequest{StoreId: "t", Cursor: "0"})
	if err != nil || len(changes) != 1 || changes[0].GetDeviceId() != "laptop" {
		t.Fatalf("changes of a put with VSSCTL_DEVICE_ID: %v, %v", changes, err)
	}
}
