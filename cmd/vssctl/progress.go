package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows how far a long operation got on one line of standard error, rewritten
// in place, when standard error is a terminal; otherwise it shows nothing, so that
// scripts and logs see only results and errors.
type progress struct {
	w  io.Writer
	on bool

	mu    sync.Mutex
	last  time.Time
	shown bool
}

// progressInterval is the least time between two updates of the line.
const progressInterval = 100 * time.Millisecond

func newProgress(w io.Writer, terminal bool) *progress { return &progress{w: w, on: terminal} }

// isTerminal reports whether stream, standard input or output, is a terminal (not
// merely a character device such as /dev/null, from which no one answers a question).
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// show replaces the progress line, at most every progressInterval.
func (p *progress) show(format string, args ...any) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= progressInterval {
		p.last = now
		p.shown = true
		fmt.Fprintf(p.w, "\r%s\033[K", fmt.Sprintf(format, args...))
	}
}

// done clears the progress line, if one is shown.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
		p.last = time.Time{}
	}
}

// largeBody is the size from which request and response bodies show their progress.
const largeBody = 1 << 20

// progressHTTP sends requests through next and shows the progress of large request and
// response bodies.
type progressHTTP struct {
	next *http.Client
	p    *progress
}

func (h *progressHTTP) Do(req *http.Request) (*http.Response, error) {
	// A request's ContentLength 0 with a body means that its length is unknown.
	if h.p.on && req.Body != nil && req.Body != http.NoBody && !(0 < req.ContentLength && req.ContentLength <= largeBody) {
		req.Body = &countingBody{ReadCloser: req.Body, total: req.ContentLength, verb: "sent", p: h.p}
	}
	resp, err := h.next.Do(req)
	if err == nil && h.p.on && (resp.ContentLength > largeBody || resp.ContentLength < 0) {
		resp.Body = &countingBody{ReadCloser: resp.Body, total: resp.ContentLength, verb: "received", p: h.p}
	}
	return resp, err
}

// countingBody shows how much of a body went through, once it is over largeBody.
type countingBody struct {
	io.ReadCloser
	n, total int64
	verb     string
	p        *progress
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case b.n < largeBody:
	case b.total > 0:
		b.p.show("%s %s of %s (%d%%)", b.verb, size(b.n), size(b.total), b.n*100/b.total)
	default:
		b.p.show("%s %s", b.verb, size(b.n))
	}
	return n, err
}

// size formats a number of bytes for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
