//go:build ha

package faulttest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// haCluster is deploy/ha/ha.sh's cluster: etcd and PostgreSQL nodes under Patroni with
// synchronous replication, in a directory of its own.
type haCluster struct {
	t     *testing.T
	dir   string
	nodes int
	sync  bool
}

// startHA starts the cluster with nodes PostgreSQL nodes and waits until it has a leader
// and a synchronous standby.
func startHA(t *testing.T, nodes int) *haCluster {
	t.Helper()
	return startHAWith(t, nodes, true)
}

// startHAWith is startHA with synchronous replication or without.
func startHAWith(t *testing.T, nodes int, sync bool) *haCluster {
	t.Helper()
	lockHAPorts(t)
	dir, err := os.MkdirTemp("", "vss-ha-")
	if err != nil {
		t.Fatal(err)
	}
	c := &haCluster{t: t, dir: dir, nodes: nodes, sync: sync}
	c.script("start")
	t.Cleanup(func() { c.script("stop") })
	waitFor(t, 90*time.Second, "a leader and a synchronous standby", func() bool {
		leader, syncName := c.roles()
		return leader != "" && (syncName != "" || !sync)
	})
	return c
}

// lockHAPorts waits until no other process on this machine runs a cluster of ha.sh,
// whose ports are fixed, and holds the machine's lock until t ends (after the cluster
// is stopped: cleanups run last registered first).
func lockHAPorts(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "vss-ha.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing the file releases the lock
}

// script runs deploy/ha/ha.sh with a command and its arguments on the cluster.
func (c *haCluster) script(args ...string) { c.t.Helper(); c.scriptEnv(nil, args...) }

// scriptEnv is script with extra environment.
func (c *haCluster) scriptEnv(env []string, args ...string) {
	c.t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(c.t), "deploy", "ha", "ha.sh")}, args...)...)
	syncEnv := "HA_SYNC=1"
	if !c.sync {
		syncEnv = "HA_SYNC=0"
	}
	// The tests start their own servers, to kill and watch them.
	cmd.Env = append(append(os.Environ(), "HA_DIR="+c.dir, "HA_PG_NODES="+strconv.Itoa(c.nodes), syncEnv, "HA_START_VSS=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Errorf("ha.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// hasFailsafeKey reports whether etcd holds the cluster's failsafe key, read through
// etcd's v3 HTTP gateway.
func (c *haCluster) hasFailsafeKey() bool {
	body := `{"key":"` + base64.StdEncoding.EncodeToString([]byte("/service/vss/failsafe")) + `"}`
	resp, err := http.Post("http://127.0.0.1:2379/v3/kv/range", "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Count string `json:"count"`
	}
	return json.NewDecoder(resp.Body).Decode(&r) == nil && r.Count != "" && r.Count != "0"
}

// proxy starts the cluster's HAProxy in front of servers and returns its URL.
func (c *haCluster) proxy(servers ...*serverProc) string {
	c.t.Helper()
	port, err := freePort()
	if err != nil {
		c.t.Fatal(err)
	}
	var ports []string
	for _, s := range servers {
		ports = append(ports, strings.TrimPrefix(s.addr, "127.0.0.1:"))
	}
	c.scriptEnv([]string{"HA_VSS_PORTS=" + strings.Join(ports, " "), "HA_PROXY_PORT=" + strconv.Itoa(port)}, "proxy-start")
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	waitFor(c.t, 10*time.Second, "HAProxy to see the servers", func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// member is one node of Patroni's /cluster answer.
type member struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
}

// roles returns the leader's and the synchronous standby's names, as Patroni's REST API
// of any node that answers tells them.
func (c *haCluster) roles() (leader, sync string) {
	for i := 1; i <= c.nodes; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/cluster", 8008+i))
		if err != nil {
			continue
		}
		var cl struct{ Members []member }
		err = json.NewDecoder(resp.Body).Decode(&cl)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, m := range cl.Members {
			switch {
			case m.Role == "leader" && m.State == "running":
				leader = m.Name
			case m.Role == "sync_standby" && (m.State == "running" || m.State == "streaming"):
				sync = m.Name
			}
		}
		return leader, sync
	}
	return "", ""
}

// url is the servers' database URL: every node, the primary chosen by the driver.
func (c *haCluster) url() string {
	var hosts []string
	for i := 1; i <= c.nodes; i++ {
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", 5440+i))
	}
	return "postgres://postgres:postgres@" + strings.Join(hosts, ",") + "/postgres?target_session_attrs=read-write&sslmode=disable"
}

// killLeader kills the leader's Patroni and PostgreSQL with SIGKILL, as a crash of its
// machine would, and returns its name.
func (c *haCluster) killLeader() string {
	c.t.Helper()
	leader, _ := c.roles()
	if leader == "" {
		c.t.Fatal("no leader to kill")
	}
	for _, f := range []string{filepath.Join(c.dir, leader+".pid"), filepath.Join(c.dir, leader, "postmaster.pid")} {
		b, err := os.ReadFile(f)
		if err != nil {
			c.t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
		if err != nil {
			c.t.Fatal(err)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return leader
}

// watchGaps samples how many writes l has acknowledged every 10 ms until stop is called,
// and stop returns the longest time in which none was: the writes' unavailability.
func watchGaps(l *load) (stop func() time.Duration) {
	done := make(chan time.Duration)
	quit := make(chan struct{})
	go func() {
		last, lastAt, longest := l.applied(), time.Now(), time.Duration(0)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				done <- longest
				return
			case now := <-tick.C:
				if n := l.applied(); n != last {
					longest = max(longest, now.Sub(lastAt))
					last, lastAt = n, now
				}
			}
		}
	}()
	return func() time.Duration { close(quit); return <-done }
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestHAKillPrimary runs wallets through two server instances on a three-node cluster
// with synchronous replication, kills the primary with SIGKILL, and checks that no
// acknowledged write is lost and no read is stale, and how long writes were unavailable.
func TestHAKillPrimary(t *testing.T) {
	c := startHA(t, 3)
	s1 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	s2 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	wallets := append(newWallets(t, 4, s1.url(), 1), newWallets(t, 4, s2.url(), 2)...)
	l := startLoad(wallets)
	defer l.stop()
	waitFor(t, 20*time.Second, "the load to start", func() bool { return l.applied() > 100 })

	gaps := watchGaps(l)
	before := l.applied()
	leader := c.killLeader()
	waitFor(t, 90*time.Second, "a new leader", func() bool {
		now, _ := c.roles()
		return now != "" && now != leader
	})
	newLeader, sync := c.roles()
	waitFor(t, 90*time.Second, "writes after the failover", func() bool { return l.applied() > before+100 })
	l.stop()
	t.Logf("killed leader %s with %d writes acknowledged; leader now %s, synchronous standby %q; writes unavailable for %s at most",
		leader, before, newLeader, sync, gaps().Round(time.Millisecond))
	l.verify(t)
	if slices.Contains([]string{"", leader}, newLeader) {
		t.Errorf("leader after the failover: %q", newLeader)
	}
}

// TestHASwitchover moves the primary to the synchronous standby on purpose (a planned
// switchover, as for maintenance) under the same load: no acknowledged write is lost,
// and writes pause only briefly.
func TestHASwitchover(t *testing.T) {
	c := startHA(t, 3)
	s1 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	s2 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	wallets := append(newWallets(t, 4, s1.url(), 3), newWallets(t, 4, s2.url(), 4)...)
	l := startLoad(wallets)
	defer l.stop()
	waitFor(t, 20*time.Second, "the load to start", func() bool { return l.applied() > 100 })

	leader, sync := c.roles()
	gaps := watchGaps(l)
	before := l.applied()
	out, err := exec.Command("patronictl", "-c", filepath.Join(c.dir, "pg1.yml"), "switchover", "--force",
		"--leader", leader, "--candidate", sync).CombinedOutput()
	if err != nil {
		t.Fatalf("patronictl switchover: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "the candidate to lead", func() bool {
		now, _ := c.roles()
		return now == sync
	})
	waitFor(t, 60*time.Second, "writes after the switchover", func() bool { return l.applied() > before+100 })
	l.stop()
	t.Logf("switched over from %s to %s with %d writes acknowledged; writes unavailable for %s at most",
		leader, sync, before, gaps().Round(time.Millisecond))
	l.verify(t)
}

// TestHAEtcdStopped stops etcd for longer than the leader key's time to live under the
// same load, then starts it again: the primary keeps serving (Patroni's failsafe mode),
// and no acknowledged write is lost.
func TestHAEtcdStopped(t *testing.T) {
	c := startHA(t, 3)
	s1 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	s2 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	wallets := append(newWallets(t, 4, s1.url(), 5), newWallets(t, 4, s2.url(), 6)...)
	l := startLoad(wallets)
	defer l.stop()
	waitFor(t, 20*time.Second, "the load to start", func() bool { return l.applied() > 100 })

	// Failsafe mode needs the leader to have written the members it must reach into
	// etcd (the failsafe key) before etcd goes away; without it, the leader demotes
	// itself when its key expires.
	waitFor(t, 30*time.Second, "the failsafe key in etcd", c.hasFailsafeKey)
	leader, _ := c.roles()
	gaps := watchGaps(l)
	c.script("etcd-stop")
	time.Sleep(15 * time.Second) // the leader key's TTL is 10 s
	during := l.applied()
	c.script("etcd-start")
	waitFor(t, 60*time.Second, "a leader known to etcd again", func() bool {
		now, _ := c.roles()
		return now != ""
	})
	waitFor(t, 60*time.Second, "writes after etcd is back", func() bool { return l.applied() > during+100 })
	l.stop()
	now, _ := c.roles()
	t.Logf("etcd stopped for 15 s with %s leading (%s after); writes unavailable for %s at most",
		leader, now, gaps().Round(time.Millisecond))
	l.verify(t)
}

// TestHAKillPrimaryAsync is TestHAKillPrimary with asynchronous replication, for
// comparison: it reports how many acknowledged writes the failover lost (the reason
// replication is synchronous by default) and fails only if the load did not run.
func TestHAKillPrimaryAsync(t *testing.T) {
	c := startHAWith(t, 3, false)
	s1 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	s2 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	wallets := append(newWallets(t, 4, s1.url(), 7), newWallets(t, 4, s2.url(), 8)...)
	l := startLoad(wallets)
	defer l.stop()
	waitFor(t, 20*time.Second, "the load to start", func() bool { return l.applied() > 300 })
	gaps := watchGaps(l)
	before := l.applied()
	leader := c.killLeader()
	waitFor(t, 90*time.Second, "a new leader", func() bool {
		now, _ := c.roles()
		return now != "" && now != leader
	})
	waitFor(t, 90*time.Second, "writes after the failover", func() bool { return l.applied() > before+100 })
	l.stop()
	newLeader, _ := c.roles()
	lost := l.check(t, t.Log)
	t.Logf("asynchronous replication: killed leader %s with %d writes acknowledged; leader now %s; writes unavailable for %s at most; %d ledger problems (acknowledged writes lost or read stale)",
		leader, before, newLeader, gaps().Round(time.Millisecond), lost)
}

// TestHAKillServer kills one of two server instances behind HAProxy with SIGKILL under
// load, then starts it again: the wallets, which reach the servers through HAProxy only,
// go on through the other instance, and no acknowledged write is lost.
func TestHAKillServer(t *testing.T) {
	c := startHA(t, 3)
	s1 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	s2 := startServer(t, "--database-url", c.url(), "--auth", "signature")
	proxy := c.proxy(s1, s2)
	l := startLoad(newWallets(t, 8, proxy, 9))
	defer l.stop()
	waitFor(t, 20*time.Second, "the load to start", func() bool { return l.applied() > 100 })
	gaps := watchGaps(l)
	before := l.applied()
	s1.kill()
	waitFor(t, 30*time.Second, "writes with one instance killed", func() bool { return l.applied() > before+300 })
	s1.start()
	during := l.applied()
	waitFor(t, 30*time.Second, "writes with the instance back", func() bool { return l.applied() > during+300 })
	l.stop()
	t.Logf("killed one of two server instances behind HAProxy with %d writes acknowledged; writes unavailable for %s at most",
		before, gaps().Round(time.Millisecond))
	l.verify(t)
}
