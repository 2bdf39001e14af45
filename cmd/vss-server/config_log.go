package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// logFile is a log destination that appends to a file and reopens it on SIGHUP, so that
// logrotate (or a person) can move the file away, as with the reference server.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openLog returns the writer for the log: stderr when path is empty, else the file at
// path opened for appending (created with mode 0640 if missing) and reopened on SIGHUP.
func openLog(path string, stderr io.Writer) (io.Writer, error) {
	if path == "" {
		return stderr, nil
	}
	l := &logFile{path: path}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := l.reopen(); err != nil {
				fmt.Fprintln(stderr, "vss-server:", err)
			}
		}
	}()
	return l, nil
}

// reopen opens the file at l.path again and closes the one written so far.
func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Write appends p to the current file.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}
