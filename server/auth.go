package server

import (
	"context"
	"net/http"
	"unicode/utf8"
)

// Authorizer turns the headers of a request into the identity of the user whose data
// the request touches. It runs before the request body is read.
//
// Authorize returns the user identity (a non-empty string of at most 120 characters,
// the limit of the reference schema's user_token column), or an error. Errors made with
// AuthError reach the client as AUTH_EXCEPTION (HTTP 401, Connect unauthenticated) with
// their message; any other error is an internal failure.
//
// Authorize runs while the request holds one of the server's concurrency slots, so it
// must answer from what it has at hand: it must never wait on the network, a lock held
// across I/O or other requests (the JWT authorizer refreshes its keys in the
// background for this reason).
type Authorizer interface {
	Authorize(ctx context.Context, header http.Header) (string, error)
}

// AuthorizerFunc adapts a function to the Authorizer interface.
type AuthorizerFunc func(ctx context.Context, header http.Header) (string, error)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, header http.Header) (string, error) {
	return f(ctx, header)
}

// NoAuthUser is the single user every request acts as when authentication is off. It is
// the identity the reference server's no-op authorizer uses, so a development database
// moves between the two servers unchanged.
const NoAuthUser = "unauthenticated"

// NoAuth returns an Authorizer that accepts every request as NoAuthUser. Every client
// shares one user's data: use it only for local development and tests.
func NoAuth() Authorizer { return noAuth{} }

type noAuth struct{}

func (noAuth) Authorize(context.Context, http.Header) (string, error) { return NoAuthUser, nil }

// isNoAuth reports whether a is NoAuth, under which every request is the same user.
func isNoAuth(a Authorizer) bool {
	_, ok := a.(noAuth)
	return ok
}

type userKey struct{}

// authorize runs the authorizer, validates what it returned and applies the user's
// rate limit; the error is already classified for the client.
func (h *handler) authorize(r *http.Request) (context.Context, *Error) {
	ctx := r.Context()
	user, err := h.auth.Authorize(ctx, r.Header)
	if err != nil {
		return ctx, h.svc.classify(ctx, err)
	}
	if user == "" || utf8.RuneCountInString(user) > MaxUserLength {
		h.svc.log.ErrorContext(ctx, "authorizer returned an unusable user identity", "request_id", RequestID(ctx), "length", len(user))
		return ctx, h.svc.classify(ctx, authError("authenticated identity is not usable"))
	}
	if h.limit != nil {
		if ok, wait := h.limit.allow(user); !ok {
			return ctx, h.svc.classify(ctx, rateLimited(wait))
		}
	}
	return context.WithValue(ctx, userKey{}, user), nil
}

// admit authorizes r, then takes a slot of the VSS budget for its user: first the
// user's share, then a slot of the whole budget; and it makes the body reserve its
// bytes in the upload budget as it is read (budgets.meterBody). Both bindings call it
// before they read the body, so a request without valid credentials never holds a slot
// or a byte, and one user's requests never hold more than that user's share of either. The caller must call release when
// the request is done (release is nil with an error).
func (h *handler) admit(r *http.Request) (ctx context.Context, release func(), e *Error) {
	ctx, e = h.authorize(r)
	if e != nil {
		return ctx, nil, e
	}
	releaseSlot, e := h.budgets.admitUser(ctx, userFrom(ctx))
	if e != nil {
		return ctx, nil, h.svc.classify(ctx, e)
	}
	giveBytes, e := h.budgets.meterBody(r, userFrom(ctx), h.maxBody)
	if e != nil {
		releaseSlot()
		return ctx, nil, h.svc.classify(ctx, e)
	}
	return ctx, func() { giveBytes(); releaseSlot() }, nil
}

// userFrom returns the user that authorize stored in ctx.
func userFrom(ctx context.Context) string {
	user, _ := ctx.Value(userKey{}).(string)
	return user
}
