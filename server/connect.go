package server

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// connectService adapts Service to the generated Connect handler interface. The
// handler serves the Connect protocol (binary and JSON), gRPC and gRPC-Web.
type connectService struct{ h *handler }

var _ vssv1connect.VssServiceHandler = connectService{}

func (c connectService) GetObject(ctx context.Context, req *connect.Request[vssv1.GetObjectRequest]) (*connect.Response[vssv1.GetObjectResponse], error) {
	return unary(c.h, ctx, req.Msg, c.h.svc.GetObject)
}

func (c connectService) PutObjects(ctx context.Context, req *connect.Request[vssv1.PutObjectRequest]) (*connect.Response[vssv1.PutObjectResponse], error) {
	return unary(c.h, ctx, req.Msg, c.h.svc.PutObjects)
}

func (c connectService) DeleteObject(ctx context.Context, req *connect.Request[vssv1.DeleteObjectRequest]) (*connect.Response[vssv1.DeleteObjectResponse], error) {
	return unary(c.h, ctx, req.Msg, c.h.svc.DeleteObject)
}

func (c connectService) ListKeyVersions(ctx context.Context, req *connect.Request[vssv1.ListKeyVersionsRequest]) (*connect.Response[vssv1.ListKeyVersionsResponse], error) {
	return unary(c.h, ctx, req.Msg, c.h.svc.ListKeyVersions)
}

func unary[Req, Resp any](h *handler, ctx context.Context, req *Req, call func(context.Context, string, *Req) (*Resp, error)) (*connect.Response[Resp], error) {
	if h.metrics != nil {
		noteSizes(ctx, proto.Size(any(req).(proto.Message)), -1)
	}
	resp, err := call(ctx, userFrom(ctx), req)
	if err != nil {
		return nil, connectError(h.svc.classify(ctx, err))
	}
	noteResult(ctx, resultOK)
	if h.metrics != nil {
		noteSizes(ctx, -1, proto.Size(any(resp).(proto.Message)))
	}
	return connect.NewResponse(resp), nil
}

// connectHandler returns the Connect, gRPC and gRPC-Web handler with authentication and
// admission (handler.admit) in front of it, so that unauthenticated requests are refused
// before their body is read and never hold a request slot. opts are the options every
// RPC service gets (see rpcOptions): they bound messages.
func (h *handler) connectHandler(opts ...connect.HandlerOption) (string, http.Handler) {
	path, svc := vssv1connect.NewVssServiceHandler(connectService{h},
		connect.WithHandlerOptions(opts...),
		connect.WithInterceptors(h.interceptors...),
		connect.WithRecover(func(ctx context.Context, _ connect.Spec, _ http.Header, p any) error {
			h.svc.log.ErrorContext(ctx, "panic while serving a request", "request_id", RequestID(ctx), "panic", p)
			return connectError(h.svc.classify(ctx, errInternal))
		}),
	)
	errs := connect.NewErrorWriter()
	return path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, b := rpcOfProcedure(r.URL.Path), bindingOfContentType(r.Header.Get("Content-Type"))
		defer h.metrics.end(r.Context(), op, b, h.metrics.begin())
		ctx, release, aerr := h.admit(r)
		if aerr != nil {
			h.metrics.authFailed(r.Header, aerr)
			_ = errs.Write(w, r, connectError(aerr))
			return
		}
		defer release()
		svc.ServeHTTP(w, r.WithContext(ctx))
	})
}
