package auth

import (
	"context"
	"errors"
	"net/http"
	"testing"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/server"
)

// withAuthorization returns headers carrying the given Authorization values.
func withAuthorization(values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add("Authorization", v)
	}
	return h
}

// authMessage asserts that err is a server.AuthError and returns its message.
func authMessage(t testing.TB, err error) string {
	t.Helper()
	var e *server.Error
	if !errors.As(err, &e) || e.Code != vssv1.ErrorCode_AUTH_EXCEPTION {
		t.Fatalf("error %v (%T) is not a server.AuthError", err, err)
	}
	return e.Message
}

// authorize runs a with the given Authorization values.
func authorize(a server.Authorizer, values ...string) (string, error) {
	return a.Authorize(context.Background(), withAuthorization(values...))
}
