// Package explorer serves the store explorer: a browser app that lists a VSS store's keys,
// versions and global version page by page and shows values as UTF-8 or hex, calling the
// server's Connect API with credentials that stay in the browser.
//
// The app's sources are in this directory (index.html, src/); its build is in dist/,
// committed so that the server builds without Node.js. `make build-explorer` rebuilds it
// and `make test-explorer` fails if the committed build is stale.
package explorer

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed dist
var dist embed.FS

// Path is where the explorer is served.
const Path = "/explorer/"

// contentSecurityPolicy lets the page load only its own scripts and styles, call any
// VSS server (the server URL is a form field) and nothing else: the page handles
// private keys.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self' http: https:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the explorer's files. It expects request paths under Path.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time
	}
	files := http.StripPrefix(strings.TrimSuffix(Path, "/"), http.FileServerFS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, Path+"assets/") {
			// Asset names carry a hash of their content.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}

// Register adds the explorer's routes to mux: GET Path and everything below it.
func Register(mux *http.ServeMux) {
	mux.Handle("GET "+Path, Handler())
}
