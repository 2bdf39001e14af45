package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress shows how far a long admin command got on one line of standard error,
// rewritten in place, when standard error is a terminal; otherwise it shows nothing, so
// that scripts and logs see only the summary and errors. It is used from one goroutine.
type progress struct {
	w     io.Writer
	on    bool
	last  time.Time
	shown bool
}

// progressInterval is the least time between two updates of the line.
const progressInterval = 200 * time.Millisecond

func newProgress(w io.Writer, terminal bool) *progress { return &progress{w: w, on: terminal} }

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// isTerminalOutput reports whether w is a terminal that a binary output must not go to:
// a character device other than the null device.
func isTerminalOutput(w io.Writer) bool {
	if !isTerminal(w) {
		return false
	}
	fi, err1 := w.(*os.File).Stat()
	null, err2 := os.Stat(os.DevNull)
	return err1 != nil || err2 != nil || !os.SameFile(fi, null)
}

// show replaces the progress line, at most every progressInterval.
func (p *progress) show(format string, args ...any) {
	if !p.on {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= progressInterval {
		p.last, p.shown = now, true
		fmt.Fprintf(p.w, "\r%s\033[K", fmt.Sprintf(format, args...))
	}
}

// done clears the progress line, if one is shown.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
