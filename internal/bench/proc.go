package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// procCPU returns the user+system CPU seconds process pid has used.
func procCPU(pid int) (float64, error) {
	f, _, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(f[11], f[12]), nil
}

// procMem returns VmRSS and VmHWM (peak RSS) of process pid, in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		fs := strings.Fields(line)
		if len(fs) >= 2 {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			*dst = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// resetHWM resets the peak RSS (VmHWM) of pid to its current RSS, as
// `echo 5 > /proc/PID/clear_refs` does; it needs to own the process or be root.
func resetHWM(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// procStat returns the fields of /proc/PID/stat after the command name: f[0] is field 3
// (state), f[1] field 4 (ppid), f[11] and f[12] utime and stime, f[13] and f[14] the
// CPU times of waited-for children; and the command name.
func procStat(pid int) (fields []string, comm string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, "", err
	}
	s := string(b)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return nil, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 15 {
		return nil, "", fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return f, s[i+1 : j], nil
}

func ticks(fs ...string) float64 {
	var t float64
	for _, f := range fs {
		v, _ := strconv.ParseFloat(f, 64)
		t += v
	}
	return t / clockTicks
}

// childPID returns the pid of a child of this process whose command name is comm, or 0.
func childPID(comm string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, c, err := procStat(pid)
		if err == nil && c == comm && f[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	return 0
}

// treeCPU returns the CPU seconds used by process root and its children, living or
// exited: PostgreSQL's postmaster and its backends.
func treeCPU(root int) (float64, error) {
	f, _, err := procStat(root)
	if err != nil {
		return 0, err
	}
	total := ticks(f[11], f[12], f[13], f[14])
	ents, _ := os.ReadDir("/proc")
	parent := strconv.Itoa(root)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		if f, _, err := procStat(pid); err == nil && f[1] == parent {
			total += ticks(f[11], f[12])
		}
	}
	return total, nil
}
