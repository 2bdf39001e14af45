package vssclient

import (
	"context"
	"net/http"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/govss/vss/client/sigauth"
)

// HeaderProvider supplies the headers of a request, typically Authorization. The
// client calls it before every attempt, so a provider can sign with the current time
// or refresh a token; ctx is the attempt's context.
type HeaderProvider interface {
	Headers(ctx context.Context) (http.Header, error)
}

// HeaderFunc adapts a function to HeaderProvider.
type HeaderFunc func(ctx context.Context) (http.Header, error)

// Headers calls f.
func (f HeaderFunc) Headers(ctx context.Context) (http.Header, error) { return f(ctx) }

// Signature returns the provider of the signature scheme, the reference VSS server's
// default: every attempt carries an Authorization header signed by priv with the
// current time (package sigauth has the format). The server's user is priv's public
// key.
func Signature(priv *secp256k1.PrivateKey) HeaderProvider {
	return HeaderFunc(func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": {sigauth.Header(priv, time.Now())}}, nil
	})
}

// Bearer returns a provider that sends "Authorization: Bearer <token>" with every
// request, for servers that verify JWTs from an identity provider.
func Bearer(token string) HeaderProvider {
	return FixedHeaders(http.Header{"Authorization": {"Bearer " + token}})
}

// FixedHeaders returns a provider that sends the same headers with every request.
func FixedHeaders(h http.Header) HeaderProvider {
	h = h.Clone()
	return HeaderFunc(func(context.Context) (http.Header, error) { return h, nil })
}
