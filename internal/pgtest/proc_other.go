//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs a server binary as cred (when not nil). Outside Linux a crashed test
// binary can leave its server running.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
