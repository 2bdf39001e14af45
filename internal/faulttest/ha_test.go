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

	"github.com/govss/vss/internal/app"
)

// haCluster is deploy/ha/ha.sh's cluster: etcd and PostgreSQL nodes under Patroni with
// synchronous replication, in a directory of its own.
type haCluster struct {
	t     *testing.T
	dir   string
	nodes int
	sync  bool
}

// startHA starts the cluster with nodes PostgreSQL nodes and waits until it is healthy:
// every node runs, one leads and one is its synchronous standby.
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
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= nodes; i++ {
				if b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("pg%d.log", i))); err == nil {
					t.Logf("Patroni's log of pg%d (%s):\n%s", i, dir, tail(b, 6000))
				}
			}
		}
		c.script("stop")
		// ha.sh stop leaves nothing behind: no process of the cluster, no directory.
		if out, err := exec.Command("pgrep", "-af", dir+"/").Output(); err == nil {
			t.Errorf("processes left after ha.sh stop:\n%s", out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("ha.sh stop left %s behind (%v)", dir, err)
		}
	})
	if t.Failed() { // ha.sh start said why
		t.FailNow()
	}
	// Every node, not only a leader (and a synchronous standby): a standby still
	// cloning the primary has no data to take over with, and a crash of the primary
	// then leaves no node that can lead.
	waitFor(t, 90*time.Second, "every node running, a leader and a synchronous standby", c.healthy)
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
	resp, err := haHTTP.Post("http://127.0.0.1:2379/v3/kv/range", "application/json", strings.NewReader(body))
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
		resp, err := haHTTP.Get(url + "/readyz")
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

// haHTTP asks Patroni, etcd and HAProxy, giving up on one that does not answer (a
// frozen node's REST API accepts connections and never answers) so that the next is
// asked.
var haHTTP = &http.Client{Timeout: 2 * time.Second}

// members returns the nodes as Patroni's REST API of any node that answers tells them,
// or nil when none answers.
func (c *haCluster) members() []member {
	for i := 1; i <= c.nodes; i++ {
		resp, err := haHTTP.Get(fmt.Sprintf("http://127.0.0.1:%d/cluster", 8008+i))
		if err != nil {
			continue
		}
		var cl struct{ Members []member }
		err = json.NewDecoder(resp.Body).Decode(&cl)
		resp.Body.Close()
		if err == nil {
			return cl.Members
		}
	}
	return nil
}

// roles returns the leader's and the synchronous standby's names.
func (c *haCluster) roles() (leader, sync string) {
	for _, m := range c.members() {
		switch {
		case m.Role == "leader" && m.State == "running":
			leader = m.Name
		case m.Role == "sync_standby" && (m.State == "running" || m.State == "streaming"):
			sync = m.Name
		}
	}
	return leader, sync
}

// url is the servers' database URL: every node, the primary chosen by the driver.
func (c *haCluster) url() string { return c.urlFirst("") }

// urlFirst is url with node first (when not empty) before the others.
func (c *haCluster) urlFirst(first string) string {
	var hosts []string
	for i := 1; i <= c.nodes; i++ {
		host := fmt.Sprintf("127.0.0.1:%d", 5440+i)
		if fmt.Sprintf("pg%d", i) == first {
			hosts = append([]string{host}, hosts...)
		} else {
			hosts = append(hosts, host)
		}
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
	for _, pid := range c.nodePIDs(leader, false) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return leader
}

// nodePIDs returns the processes of node name: its Patroni and its postmaster, and with
// children the postmaster's children (its backends and workers) too.
func (c *haCluster) nodePIDs(name string, children bool) []int {
	c.t.Helper()
	var pids []int
	for _, f := range []string{filepath.Join(c.dir, name+".pid"), filepath.Join(c.dir, name, "postmaster.pid")} {
		b, err := os.ReadFile(f)
		if err != nil {
			c.t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
		if err != nil {
			c.t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if children {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(pids[1])).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// watchGaps samples how many writes l has acknowledged every 10 ms until stop is called,
// and stop returns the longest time in which none was, including one still open: the
// writes' unavailability.
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
				done <- max(longest, time.Since(lastAt)) // a gap still open counts too
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

// haRounds is how many times TestHAKillPrimary and TestHASwitchover fail the primary
// over, one after the other on one cluster, for the p50 and max of the unavailability:
// HA_ROUNDS, 3 by default.
func haRounds(t *testing.T) int {
	n := 3
	if v := os.Getenv("HA_ROUNDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("HA_ROUNDS=%q: want a positive number", v)
		}
	}
	return n
}

// healthy reports whether every node runs, one leads and one is its synchronous standby.
func (c *haCluster) healthy() bool {
	ms := c.members()
	var leader, sync, running int
	for _, m := range ms {
		if m.State == "running" || m.State == "streaming" {
			running++
		}
		switch m.Role {
		case "leader":
			leader++
		case "sync_standby":
			sync++
		}
	}
	return len(ms) == c.nodes && running == c.nodes && leader == 1 && (sync >= 1 || !c.sync)
}

// failoverRounds fails the primary over rounds times under l, with fail (which returns
// the leader it failed), waiting each time for a new leader and for writes again, then
// for the whole cluster to be healthy (after recover, if set, brings the failed node
// back); it returns the writes' longest unavailability of each round.
func (c *haCluster) failoverRounds(l *load, what string, rounds int, fail func() string, recover func(leader string)) []time.Duration {
	t := c.t
	t.Helper()
	var windows []time.Duration
	for round := 1; round <= rounds; round++ {
		gaps := watchGaps(l)
		before := l.applied()
		failed := time.Now()
		leader := fail()
		waitFor(t, 90*time.Second, "a new leader", func() bool {
			now, _ := c.roles()
			return now != "" && now != leader
		})
		elected := time.Since(failed)
		// Writes counted from here follow the failover (a switchover's command returns
		// once it is done, and writes went on while it began).
		after := l.applied()
		waitFor(t, 90*time.Second, "writes after the failover", func() bool { return l.applied() > after+100 })
		w := gaps()
		windows = append(windows, w)
		now, _ := c.roles()
		t.Logf("round %d: %s %s with %d writes acknowledged; %s leads %s later; writes unavailable for %s at most",
			round, what, leader, before, now, elected.Round(time.Millisecond), w.Round(time.Millisecond))
		if recover != nil {
			recover(leader)
		}
		waitFor(t, 120*time.Second, "every node back, with a synchronous standby", c.healthy)
	}
	slices.Sort(windows)
	t.Logf("%s, writes unavailable over %d runs: p50 %s, max %s (all: %v)", what, rounds,
		windows[(len(windows)-1)/2].Round(time.Millisecond), windows[len(windows)-1].Round(time.Millisecond), roundAll(windows))
	return windows
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// checkFailoverMetrics checks what each server saw of the failovers: at least one change
// of primary per round, the database up again, and (when unavailable is set) some time
// without a database.
func checkFailoverMetrics(t *testing.T, rounds int, unavailable bool, servers ...*serverProc) {
	t.Helper()
	for _, s := range servers {
		m := scrapeMetrics(t, s.url())
		t.Logf("server %s saw: %s %v, %s %v, %s %.3f", s.addr,
			app.MetricDBPrimaryChanges, m[app.MetricDBPrimaryChanges], app.MetricDBConnectionErrors, m[app.MetricDBConnectionErrors],
			app.MetricDBUnavailableSeconds, m[app.MetricDBUnavailableSeconds])
		if b, err := os.ReadFile(s.log); err == nil {
			for line := range strings.Lines(string(b)) {
				if strings.Contains(line, "database reachable again") || strings.Contains(line, "database primary changed") {
					t.Logf("server %s log: %s", s.addr, strings.TrimSpace(line))
				}
			}
		}
		if m[app.MetricDBUp] != 1 || m[app.MetricDBPrimaryChanges] < float64(rounds) {
			t.Errorf("server %s: want the database up and at least %d primary changes", s.addr, rounds)
		}
		if m[app.MetricDBUnavailableSeconds] <= 0 && unavailable {
			t.Errorf("server %s: want some time without a database", s.addr)
		}
	}
}

// startHALoad starts two servers on the database URL url and 8 wallets, 4 through each
// (random seeds seed and seed+1), and waits until they have had applied writes
// acknowledged.
func startHALoad(t *testing.T, url string, seed uint64, applied int) (s1, s2 *serverProc, l *load) {
	t.Helper()
	s1 = startServer(t, "--database-url", url, "--auth", "signature")
	s2 = startServer(t, "--database-url", url, "--auth", "signature")
	l = startLoad(append(newWallets(t, 4, s1.url(), seed), newWallets(t, 4, s2.url(), seed+1)...))
	t.Cleanup(l.stop) // stopped before the servers are
	waitFor(t, 20*time.Second, "the load to start", func() bool { return l.applied() > applied })
	return s1, s2, l
}

// TestHAKillPrimary runs wallets through two server instances on a three-node cluster
// with synchronous replication, kills the primary with SIGKILL (and starts it again, as
// a standby, before the next round), and checks that no acknowledged write is lost and
// no read is stale, and how long writes were unavailable.
func TestHAKillPrimary(t *testing.T) {
	c := startHA(t, 3)
	s1, s2, l := startHALoad(t, c.url(), 1, 100)
	rounds := haRounds(t)
	c.failoverRounds(l, "killed leader", rounds, c.killLeader, func(leader string) { c.script("node-start", leader) })
	l.stop()
	l.verify(t)
	checkFailoverMetrics(t, rounds, true, s1, s2)
}

// TestHAFreezePrimary stops the primary's Patroni and PostgreSQL with SIGSTOP, as a
// machine that hangs would (its kernel still accepts connections and acknowledges what
// is sent, but nothing answers), under the same load: the cluster fails over when the
// leader key expires, and the servers must leave the frozen node for the new primary.
// No acknowledged write may be lost; the test reports how long writes were unavailable,
// which the wallets' request timeout (15 s) bounds: the server sets no deadline of its
// own on a database call, so requests on the frozen node wait until their clients give
// up. The frozen node is then killed and started again, as an operator fencing it would.
func TestHAFreezePrimary(t *testing.T) {
	c := startHA(t, 3)
	// The node to freeze comes first in the servers' URL, the worst case: each new
	// connection tries it first, and waits connect_timeout before the next.
	first, _ := c.roles()
	s1, s2, l := startHALoad(t, c.urlFirst(first), 12, 100)
	var frozen []int
	c.failoverRounds(l, "froze leader", 1, func() string {
		leader, _ := c.roles()
		if leader != first {
			t.Fatalf("the leader changed from %s to %s before the freeze", first, leader)
		}
		frozen = c.nodePIDs(leader, true)
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
		return leader
	}, func(leader string) {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		c.script("node-start", leader)
	})
	l.stop()
	l.verify(t)
	// The servers saw no connection error: the requests on the frozen node ended when
	// their clients gave up (their contexts ended), and new connections went to the new
	// primary.
	checkFailoverMetrics(t, 1, false, s1, s2)
}

// TestHASwitchover moves the primary to the synchronous standby on purpose (a planned
// switchover, as for maintenance) under the same load: no acknowledged write is lost,
// and writes pause only briefly.
func TestHASwitchover(t *testing.T) {
	c := startHA(t, 3)
	s1, s2, l := startHALoad(t, c.url(), 3, 100)
	rounds := haRounds(t)
	c.failoverRounds(l, "switched over from", rounds, func() string {
		leader, sync := c.roles()
		out, err := exec.Command("patronictl", "-c", filepath.Join(c.dir, "pg1.yml"), "switchover", "--force",
			"--leader", leader, "--candidate", sync).CombinedOutput()
		if err != nil {
			t.Fatalf("patronictl switchover: %v\n%s", err, out)
		}
		return leader
	}, nil)
	l.stop()
	l.verify(t)
	checkFailoverMetrics(t, rounds, true, s1, s2)
}

// TestHAEtcdStopped stops etcd for longer than the leader key's time to live under the
// same load, then starts it again: the primary keeps serving (Patroni's failsafe mode),
// and no acknowledged write is lost.
func TestHAEtcdStopped(t *testing.T) {
	c := startHA(t, 3)
	_, _, l := startHALoad(t, c.url(), 5, 100)

	// Failsafe mode needs the leader to have written the members it must reach into
	// etcd (the failsafe key) before etcd goes away; without it, the leader demotes
	// itself when its key expires.
	waitFor(t, 30*time.Second, "the failsafe key in etcd", c.hasFailsafeKey)
	leader, _ := c.roles()
	gaps := watchGaps(l)
	c.script("etcd-stop")
	time.Sleep(10 * time.Second) // longer than the leader key's TTL (6 s, ha.sh's default)
	during := l.applied()
	c.script("etcd-start")
	waitFor(t, 60*time.Second, "a leader known to etcd again", func() bool {
		now, _ := c.roles()
		return now != ""
	})
	waitFor(t, 60*time.Second, "writes after etcd is back", func() bool { return l.applied() > during+100 })
	l.stop()
	now, _ := c.roles()
	t.Logf("etcd stopped for 10 s with %s leading (%s after); writes unavailable for %s at most",
		leader, now, gaps().Round(time.Millisecond))
	l.verify(t)
}

// TestHAKillPrimaryAsync is TestHAKillPrimary with asynchronous replication, for
// comparison: it reports how many acknowledged writes the failover lost (the reason
// replication is synchronous by default) and fails only if the load did not run.
func TestHAKillPrimaryAsync(t *testing.T) {
	c := startHAWith(t, 3, false)
	_, _, l := startHALoad(t, c.url(), 7, 300)
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
