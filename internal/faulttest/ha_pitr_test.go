//go:build ha

package faulttest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestHAPointInTimeRecovery is the restore drill: wallets write under load while every
// node archives its WAL; a base backup is taken from the primary (ha.sh backup), the load
// goes on across a crash of the primary (so the recovery crosses a timeline change, and
// needs WAL the crashed primary never archived), and stops; the moment after it is the target time T. The load then runs again for a few
// seconds, and the database is recovered from the backup and the WAL archive up to T as
// a standalone PostgreSQL (ha.sh restore). A server on the restored database must hold
// exactly what every wallet's ledger held at T: every write acknowledged before T with
// its value and version, and none of those acknowledged after.
func TestHAPointInTimeRecovery(t *testing.T) {
	began := time.Now()
	c := startHA(t, 3)
	s := startServer(t, "--database-url", c.url(), "--auth", "signature")
	wallets := newWallets(t, 8, s.url(), 11)
	l := startLoad(wallets)
	defer func() { l.stop() }()
	waitFor(t, 20*time.Second, "the load to start", func() bool { return l.applied() > 100 })

	// The base backup, taken under load.
	backupStart := time.Now()
	backup := c.output("backup")
	backupTook := time.Since(backupStart)
	atBackup := l.applied()

	// The primary crashes between the backup and T: the WAL to replay moves to a new
	// timeline, which the archive's history file describes, and the last WAL of the old
	// primary, which it never archived, comes from the standbys' archiving
	// (archive_mode always).
	leader := c.killLeader()
	waitFor(t, 90*time.Second, "a new leader", func() bool {
		now, _ := c.roles()
		return now != "" && now != leader
	})
	newLeader, _ := c.roles()
	atFailover := l.applied()
	waitFor(t, 90*time.Second, "writes after the failover", func() bool { return l.applied() > atFailover+200 })

	// T: no request is in flight, every answer is in the ledgers, and the next write
	// commits after it.
	l.stop()
	time.Sleep(100 * time.Millisecond)
	target := time.Now()
	time.Sleep(100 * time.Millisecond)
	atTarget := make([]*Ledger, len(wallets))
	for i, w := range wallets {
		atTarget[i] = w.ledger.clone()
	}
	beforeT := l.applied()

	// Writes after T, which the restore must not hold.
	l = startLoad(wallets)
	time.Sleep(3 * time.Second)
	waitFor(t, 30*time.Second, "writes after the target time", func() bool { return l.applied() > beforeT+200 })
	l.stop()
	afterT := l.applied() - beforeT

	// Everything up to now goes to the archive, so that the recovery finds a commit
	// after T (where it stops) and need not wait for archive_timeout.
	archived := c.archiveNow()

	// The restore, into the cluster's directory, which ha.sh stop removes.
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(c.dir, "restore")
	restoreStart := time.Now()
	url := c.output("restore", backup, target.UTC().Format("2006-01-02 15:04:05.000000")+"+00", data, strconv.Itoa(port))
	restoreTook := time.Since(restoreStart)
	// The recovery must have replayed WAL of the timeline the failover began, which
	// the segment archived last is on.
	b, err := os.ReadFile(filepath.Join(data, "restore.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)(recovery stopping .*|last completed transaction .*)$`).FindAll(b, -1) {
		t.Logf("restore.log: %s", m)
	}
	if !regexp.MustCompile(`restored log file "` + archived[:8] + `[0-9A-F]{16}"`).Match(b) {
		t.Errorf("the recovery replayed no WAL segment of timeline %s (the one after the failover):\n%s", archived[:8], b)
	}

	// Every wallet's store on the restored database, through a server of its own, as the
	// wallet saw it at T.
	rs := startServer(t, "--database-url", url, "--auth", "signature")
	ctx := testContext(t, 2*time.Minute)
	problems := 0
	for i, w := range wallets {
		for _, p := range atTarget[i].Verify(ctx, newAPI(i, rs.url(), w.sk)) {
			problems++
			if problems <= 20 {
				t.Error(p)
			}
		}
	}
	if problems > 20 {
		t.Errorf("… and %d more problems", problems-20)
	}
	// The ledgers as they are now, with the writes after T, must not match the restore:
	// the check tells the two apart.
	later := 0
	for i, w := range wallets {
		later += len(w.ledger.Verify(ctx, newAPI(i, rs.url(), w.sk)))
	}
	if later == 0 {
		t.Errorf("the restore matches the ledgers with the %d writes acknowledged after T too", afterT)
	}
	t.Logf("backup (%s) took %s with %d writes acknowledged; killed leader %s, %s leads after, with %d acknowledged; target time %s with %d acknowledged, %d acknowledged after it; WAL archived up to %s; restore (copy, recovery, promotion) took %s; %d problems against the ledgers at T, %d against the ledgers after T; %s in all",
		filepath.Base(backup), backupTook.Round(time.Millisecond), atBackup, leader, newLeader, atFailover,
		target.UTC().Format(time.RFC3339Nano), beforeT, afterT, archived, restoreTook.Round(time.Millisecond),
		problems, later, time.Since(began).Round(time.Second))
	if afterT == 0 {
		t.Error("no write was acknowledged after T: the restore's stopping point is not tested")
	}

	// The cluster itself lost nothing across the failover.
	l.verify(t)
}

// output runs deploy/ha/ha.sh with args on the cluster and returns its standard output
// without surrounding space; it fails t when the script fails.
func (c *haCluster) output(args ...string) string {
	c.t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(c.t), "deploy", "ha", "ha.sh")}, args...)...)
	cmd.Env = append(os.Environ(), "HA_DIR="+c.dir, "HA_PG_NODES="+strconv.Itoa(c.nodes), "HA_START_VSS=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("ha.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// archiveNow switches the primary to a new WAL segment and waits until the one it
// completed is archived (pg_stat_archiver says so and it is in the archive directory);
// it returns that segment's name.
func (c *haCluster) archiveNow() string {
	c.t.Helper()
	ctx := testContext(c.t, 90*time.Second)
	conn, err := pgx.Connect(ctx, c.url())
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var segment string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&segment); err != nil {
		c.t.Fatal(err)
	}
	waitFor(c.t, 60*time.Second, "WAL segment "+segment+" archived", func() bool {
		var last string
		if err := conn.QueryRow(ctx, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").Scan(&last); err != nil {
			c.t.Fatal(err)
		}
		// Only a segment's own name (24 hex digits) counts, not a history file or the
		// partial segment of an earlier timeline.
		if len(last) != len(segment) || last < segment {
			return false
		}
		_, err := os.Stat(filepath.Join(c.dir, "wal-archive", segment))
		return err == nil
	})
	return segment
}

// clone returns a deep copy of l: the acknowledged state of its store as it is now,
// unchanged by writes recorded later.
func (l *Ledger) clone() *Ledger {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &Ledger{
		store: l.store, exact: make(map[string]state, len(l.exact)), gv: l.gv, gvKnown: l.gvKnown,
		applied: l.applied, refused: l.refused, unknown: l.unknown, violations: slices.Clone(l.violations),
	}
	for k, s := range l.exact {
		c.exact[k] = s.clone()
	}
	for _, d := range l.doubts {
		dc := &doubt{write: d.write.clone(), gvBefore: d.gvBefore}
		for _, s := range d.before {
			dc.before = append(dc.before, s.clone())
		}
		c.doubts = append(c.doubts, dc)
	}
	return c
}

func (s state) clone() state {
	s.value = bytes.Clone(s.value)
	return s
}

func (w write) clone() write {
	c := write{desc: w.desc, keys: slices.Clone(w.keys)}
	for _, s := range w.after {
		c.after = append(c.after, s.clone())
	}
	if w.gv != nil {
		gv := *w.gv
		c.gv = &gv
	}
	return c
}
