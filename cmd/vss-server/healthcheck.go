package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// runHealthcheck is `vss-server healthcheck [URL]`: it asks a running server whether it
// is ready (GET /readyz) and exits 0 if it answers 200 within 5 s, 1 otherwise. It is
// the HEALTHCHECK of the container image, which holds no curl or shell. Without URL it
// asks the server this environment configures: VSS_LISTEN's port on loopback, over
// HTTPS when VSS_TLS_CERT_FILE is set (its certificate is not checked: the probe talks
// to its own container).
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 1 || len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stderr, "Usage: vss-server healthcheck [URL]\n\nExits 0 if the server answers GET URL (default: http://127.0.0.1:PORT/readyz,\n"+
			"PORT from VSS_LISTEN, https when VSS_TLS_CERT_FILE is set) with 200 within 5 s, 1 otherwise.")
		return 2
	}
	url := ""
	if len(args) == 1 {
		url = args[0]
	} else {
		port := "8080"
		if listen := getenv("VSS_LISTEN"); listen != "" {
			if _, p, err := net.SplitHostPort(listen); err == nil {
				port = p
			}
		}
		scheme := "http"
		if getenv("VSS_TLS_CERT_FILE") != "" {
			scheme = "https"
		}
		url = scheme + "://" + net.JoinHostPort("127.0.0.1", port) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "vss-server healthcheck:", err)
		return 1
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // a probe of its own container
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "vss-server healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "vss-server healthcheck: %s: %s %s\n", url, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, strings.TrimSpace(string(body)))
	return 0
}
