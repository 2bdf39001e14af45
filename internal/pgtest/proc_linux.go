package pgtest

import "syscall"

// sysProcAttr runs a server binary as cred (when not nil) and has Linux kill it if the
// thread that started it, and so the test binary, goes away.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
