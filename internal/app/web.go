package app

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"

	"github.com/govss/vss/explorer"
	"github.com/govss/vss/server"
)

// withExplorer adds the store explorer's routes to routes. The page may call its own
// server and the allowedServers origins, nothing else.
func withExplorer(routes func(*http.ServeMux), allowedServers []string) (func(*http.ServeMux), error) {
	h, err := explorer.Handler(allowedServers)
	if err != nil {
		return nil, err
	}
	return func(mux *http.ServeMux) {
		if routes != nil {
			routes(mux)
		}
		explorer.Register(mux, h)
	}, nil
}

// withCORS lets web pages from origins call h: it answers CORS preflight requests and
// adds the CORS headers to responses, allowing the methods and headers Connect, gRPC-Web
// and the VSS HTTP API use, plus Authorization. An origin is "*" (any), a full origin
// such as https://wallet.example.com, or one with a single wildcard such as
// https://*.example.com.
func withCORS(h http.Handler, origins []string) (http.Handler, error) {
	for _, o := range origins {
		if err := checkOrigin(o); err != nil {
			return nil, err
		}
	}
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: connectcors.AllowedMethods(),
		// The change feed's and leases' write headers (see server.DeviceIDHeader).
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", server.DeviceIDHeader, server.LeaseNameHeader, server.LeaseTokenHeader),
		ExposedHeaders: append(connectcors.ExposedHeaders(), server.ProtocolVersionHeader, "X-Request-Id"),
		MaxAge:         7200, // seconds; browsers cap it lower
	})
	h = c.Handler(h)
	// Preflight answers never reach the server's handler; they too carry the protocol
	// version, as every response must.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(server.ProtocolVersionHeader, server.ProtocolVersion)
		h.ServeHTTP(w, r)
	}), nil
}

// checkOrigin rejects CORS origins that can never match a browser's Origin header, such
// as ones with a path or a trailing slash.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(strings.Replace(o, "*", "wildcard", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Count(o, "*") > 1 {
		return fmt.Errorf("CORS origin %q: want * or scheme://host[:port] such as https://wallet.example.com (no path, no trailing slash)", o)
	}
	return nil
}
