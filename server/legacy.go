package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// LegacyPathPrefix is where the existing VSS HTTP API lives; clients are configured with
// the base URL http(s)://host:port/vss.
const LegacyPathPrefix = "/vss/"

// legacyRoutes serves the existing VSS HTTP API: a binary protobuf request in the body
// of a POST, a binary protobuf response with status 200, or an ErrorResponse with the
// status of its code.
func (h *handler) legacyRoutes(mux *http.ServeMux) {
	mux.Handle(LegacyPathPrefix+"getObject", legacy(h, rpcGetObject, func() *vssv1.GetObjectRequest { return new(vssv1.GetObjectRequest) }, h.svc.GetObject))
	mux.Handle(LegacyPathPrefix+"putObjects", legacy(h, rpcPutObjects, func() *vssv1.PutObjectRequest { return new(vssv1.PutObjectRequest) }, h.svc.PutObjects))
	mux.Handle(LegacyPathPrefix+"deleteObject", legacy(h, rpcDeleteObject, func() *vssv1.DeleteObjectRequest { return new(vssv1.DeleteObjectRequest) }, h.svc.DeleteObject))
	mux.Handle(LegacyPathPrefix+"listKeyVersions", legacy(h, rpcListKeyVersions, func() *vssv1.ListKeyVersionsRequest { return new(vssv1.ListKeyVersionsRequest) }, h.svc.ListKeyVersions))
	mux.HandleFunc(LegacyPathPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeLegacyError(w, http.StatusNotFound, &Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Message: "no such VSS operation: " + QuoteInput(r.URL.Path)})
	})
}

// legacy adapts one Service method to the existing VSS HTTP API. Authentication and
// admission (handler.admit) run before the body is read.
func legacy[Req, Resp proto.Message](h *handler, op rpc, newReq func() Req, call func(context.Context, string, Req) (Resp, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer h.metrics.end(r.Context(), op, bindingVSSHTTP, h.metrics.begin())
		ctx, release, aerr := h.admit(r)
		if aerr != nil {
			h.metrics.authFailed(r.Header, aerr)
			writeLegacyError(w, legacyStatus(aerr), aerr)
			return
		}
		defer release()
		body, status, berr := readBody(w, r, h.maxBody, &h.bodies)
		if berr != nil {
			writeLegacyError(w, status, berr)
			return
		}
		req := newReq()
		err := proto.Unmarshal(body, req) // copies what it keeps, so the body can be reused
		size := len(body)
		h.bodies.put(body)
		if err != nil {
			writeLegacyError(w, http.StatusBadRequest, invalidf("request body is not a valid %s: %s", req.ProtoReflect().Descriptor().Name(), clipMessage(err.Error())))
			return
		}
		noteSizes(ctx, size, -1)
		resp, err := call(ctx, userFrom(ctx), req)
		if err != nil {
			e := h.svc.classify(ctx, err)
			writeLegacyError(w, legacyStatus(e), e)
			return
		}
		out, err := proto.Marshal(resp)
		if err != nil {
			e := h.svc.classify(ctx, err)
			writeLegacyError(w, legacyStatus(e), e)
			return
		}
		noteResult(ctx, resultOK)
		noteSizes(ctx, -1, len(out))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	})
}

// readBody reads a request body of at most limit bytes into a buffer from bodies, which
// the caller may hand back with bodies.put once done with it. An over-limit body is refused
// with 413 before it is read when its length is declared, and as soon as it passes the
// limit otherwise.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, bodies *bufferPool) ([]byte, int, *Error) {
	tooLarge := func() ([]byte, int, *Error) {
		return nil, http.StatusRequestEntityTooLarge, invalidf("request body is larger than the server's limit of %d bytes", limit)
	}
	if r.ContentLength > limit {
		return tooLarge()
	}
	size := r.ContentLength
	if size < 0 {
		size = 512
	}
	buf := bodies.get(int(size) + 1) // one spare byte so a body of exactly size bytes needs no regrowth to see EOF
	body := http.MaxBytesReader(w, r.Body, limit)
	for {
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, 0, nil
		}
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return tooLarge()
		}
		if e := uploadRefusal(err); e != nil {
			return nil, legacyStatus(e), e
		}
		if err != nil {
			return nil, http.StatusBadRequest, invalidf("reading the request body failed: %v", err)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

func writeLegacyError(w http.ResponseWriter, status int, e *Error) {
	out, _ := proto.Marshal(&vssv1.ErrorResponse{ErrorCode: e.Code, Message: e.Message})
	setRetryAfter(w.Header(), e)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
