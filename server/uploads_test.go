package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
)

func TestByteBudgetShareAndTotal(t *testing.T) {
	b := newByteBudget(100, 60)
	if ok, _ := b.reserve("alice", 60); !ok {
		t.Fatal("alice's first 60 bytes were refused")
	}
	if ok, share := b.reserve("alice", 1); ok || !share {
		t.Fatalf("alice's 61st byte: ok %v shareFull %v, want refused by her share", ok, share)
	}
	if ok, _ := b.reserve("bob", 40); !ok {
		t.Fatal("bob's 40 bytes were refused while 40 of the total were free")
	}
	if ok, share := b.reserve("carol", 1); ok || share {
		t.Fatalf("carol's byte with the total spent: ok %v shareFull %v, want refused by the total", ok, share)
	}
	b.give("alice", 60)
	if ok, _ := b.reserve("carol", 60); !ok {
		t.Fatal("carol's 60 bytes were refused after alice gave hers back")
	}
	b.give("bob", 40)
	b.give("carol", 60)
	if b.inFlight != 0 || len(b.held) != 0 {
		t.Fatalf("after every byte was given back: %d in flight, %d users holding", b.inFlight, len(b.held))
	}
}

// TestMeteredBody: a body reserves its declared length at admission, and a body without
// one reserves as it is read until the user's share is spent; the refusal reads as
// unavailable on Connect and as the overload Error on the VSS HTTP API, and every byte
// comes back when the call ends.
func TestMeteredBody(t *testing.T) {
	b := newBudgets(Options{MaxUploadBytes: 1 << 20, MaxUploadBytesPerUser: 3 * uploadChunk}, slog.New(slog.DiscardHandler))

	declared := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, 2*uploadChunk)))
	giveDeclared, e := b.meterBody(declared, "alice", 1<<20)
	if e != nil {
		t.Fatalf("a declared body within the share: %v", e.Message)
	}
	over := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, 2*uploadChunk)))
	if _, e := b.meterBody(over, "alice", 1<<20); e == nil || !e.Unavailable {
		t.Fatalf("a second declared body over the share: %+v, want a retryable refusal", e)
	}
	if _, e := b.meterBody(over, "bob", 1<<20); e != nil {
		t.Fatalf("another user's body: %v", e.Message)
	}

	// A body of unknown length: one chunk fits beside the declared one, the next does not.
	streamed := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(bytes.NewReader(make([]byte, 3*uploadChunk))))
	streamed.ContentLength = -1
	giveStreamed, e := b.meterBody(streamed, "alice", 1<<20)
	if e != nil {
		t.Fatal(e.Message)
	}
	n, err := io.Copy(io.Discard, streamed.Body)
	if n != uploadChunk || err == nil {
		t.Fatalf("read %d bytes, err %v; want %d bytes, then the refusal", n, err, uploadChunk)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
		t.Fatalf("the refusal on Connect: %v, want unavailable", err)
	}
	if e := uploadRefusal(err); e == nil || !e.Unavailable || e.Message != uploadShareMessage {
		t.Fatalf("the refusal on the VSS HTTP API: %+v", e)
	}
	if uploadRefusal(io.ErrUnexpectedEOF) != nil {
		t.Fatal("an ordinary read error was taken for a refusal")
	}
	giveStreamed()
	giveDeclared()
	if b.uploads.inFlight != 2*uploadChunk { // bob's body, never given back here
		t.Fatalf("%d bytes in flight, want bob's %d", b.uploads.inFlight, 2*uploadChunk)
	}
}
