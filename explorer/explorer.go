// Package explorer serves the store explorer: a browser app that lists a VSS store's keys,
// versions and global version page by page and shows values as UTF-8 or hex, calling the
// server's Connect API with credentials that stay in the browser.
//
// The page calls only the server that serves it, plus the servers its operator allows
// (Handler's allowedServers). It learns that list from config.json next to it, and the
// Content-Security-Policy it is served with lets the browser connect nowhere else, so a
// link cannot send the user's signature or token to another host.
//
// The app's sources are in this directory (index.html, src/); its build is in dist/,
// committed so that the server builds without Node.js. `make build-explorer` rebuilds it
// and `make test-explorer` fails if the committed build is stale.
package explorer

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

//go:embed dist
var dist embed.FS

// Path is where the explorer is served.
const Path = "/explorer/"

// ConfigPath is where the page reads its configuration: a JSON object whose
// allowedServers lists the origins, besides its own, that it may call.
const ConfigPath = Path + "config.json"

// Config is the body of ConfigPath.
type Config struct {
	// AllowedServers lists the VSS servers the page may call besides the one that serves
	// it, as origins (scheme://host[:port]).
	AllowedServers []string `json:"allowedServers"`
}

// contentSecurityPolicy lets the page load only its own scripts and styles and connect
// only to its own origin and to servers, and nothing else: the page handles private keys.
func contentSecurityPolicy(servers []string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self'; " +
		strings.Join(append([]string{"connect-src 'self'"}, servers...), " ") + "; " +
		"form-action 'none'; base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'"
}

// Origin returns s as a web origin the way browsers write it (lower case, no default
// port), or an error unless s is http:// or https:// followed by a host and an optional
// port, with nothing after it.
func Origin(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("explorer server %q: %s; want scheme://host[:port] such as https://vss.example.com", s, why)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return bad("not http or https")
	}
	if u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return bad("only an origin is allowed (no user, path, trailing slash, query or fragment)")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return bad("invalid host")
		}
	} else if !validHostName(host) {
		return bad("invalid host")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return bad("invalid port")
		}
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			port = ""
		}
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// validHostName reports whether h is a DNS name: letters, digits, hyphens and dots.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Handler serves the explorer's files and its configuration. allowedServers lists the
// origins the page may call besides its own (see Origin); empty means only its own.
// It expects request paths under Path.
func Handler(allowedServers []string) (http.Handler, error) {
	servers := []string{}
	for _, s := range allowedServers {
		o, err := Origin(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(servers, o) {
			servers = append(servers, o)
		}
	}
	config, err := json.Marshal(Config{AllowedServers: servers})
	if err != nil {
		return nil, err
	}
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix(strings.TrimSuffix(Path, "/"), http.FileServerFS(root))
	csp := contentSecurityPolicy(servers)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Referrer-Policy", "no-referrer")
		switch {
		case r.URL.Path == ConfigPath:
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-cache")
			_, _ = w.Write(config)
			return
		case strings.HasPrefix(r.URL.Path, Path+"assets/"):
			// Asset names carry a hash of their content.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			h.Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	}), nil
}

// Register adds the explorer's routes to mux: GET Path and everything below it, served
// by h (from Handler).
func Register(mux *http.ServeMux, h http.Handler) {
	mux.Handle("GET "+Path, h)
}
