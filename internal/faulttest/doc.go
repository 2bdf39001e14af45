// Package faulttest checks end to end that the server never loses an acknowledged write
// and never shows part of a failed one while faults hit it: PostgreSQL stopped and
// started under load, the server killed with SIGKILL on either store, several server
// instances racing on one database, and abusive connections. Its tests build the real
// vss-server binary, run it as a child process and talk to it over loopback; the package
// has no code besides them.
package faulttest
