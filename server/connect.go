package server

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/storage"
)

// connectService adapts Service to the generated Connect handler interface. The
// handler serves the Connect protocol (binary and JSON), gRPC and gRPC-Web.
type connectService struct{ h *handler }

var _ vssv1connect.VssServiceHandler = connectService{}

func (c connectService) GetObject(ctx context.Context, req *connect.Request[vssv1.GetObjectRequest]) (*connect.Response[vssv1.GetObjectResponse], error) {
	return unary(c.h, ctx, req.Msg, c.h.svc.GetObject)
}

func (c connectService) PutObjects(ctx context.Context, req *connect.Request[vssv1.PutObjectRequest]) (*connect.Response[vssv1.PutObjectResponse], error) {
	return unary(c.h, ctx, req.Msg, withWriter(req.Header(), c.h.svc.PutObjects))
}

func (c connectService) DeleteObject(ctx context.Context, req *connect.Request[vssv1.DeleteObjectRequest]) (*connect.Response[vssv1.DeleteObjectResponse], error) {
	return unary(c.h, ctx, req.Msg, withWriter(req.Header(), c.h.svc.DeleteObject))
}

// withWriter wraps a write of Service so that it runs with the storage.Writer that the
// request's headers name (the writing device, the fencing lease).
func withWriter[Req, Resp any](h http.Header, call func(context.Context, string, *Req) (*Resp, error)) func(context.Context, string, *Req) (*Resp, error) {
	return func(ctx context.Context, user string, req *Req) (*Resp, error) {
		w, err := writerFromHeader(h)
		if err != nil {
			return nil, err
		}
		return call(storage.WithWriter(ctx, w), user, req)
	}
}

func (c connectService) ListChanges(ctx context.Context, req *connect.Request[vssv1.ListChangesRequest]) (*connect.Response[vssv1.ListChangesResponse], error) {
	if c.h.feed == nil {
		return nil, errNoFeed
	}
	return unary(c.h, ctx, req.Msg, c.h.feed.ListChanges)
}

func (c connectService) GetChangeCursor(ctx context.Context, req *connect.Request[vssv1.GetChangeCursorRequest]) (*connect.Response[vssv1.GetChangeCursorResponse], error) {
	if c.h.feed == nil {
		return nil, errNoFeed
	}
	return unary(c.h, ctx, req.Msg, c.h.feed.GetChangeCursor)
}

func (c connectService) WatchChanges(ctx context.Context, req *connect.Request[vssv1.WatchChangesRequest], stream *connect.ServerStream[vssv1.WatchChangesResponse]) error {
	if c.h.feed == nil {
		return errNoFeed
	}
	if err := c.h.feed.WatchChanges(ctx, userFrom(ctx), req.Msg, stream.Send); err != nil {
		return connectError(c.h.svc.classify(ctx, err))
	}
	noteResult(ctx, resultOK)
	return nil
}

func (c connectService) AcquireLease(ctx context.Context, req *connect.Request[vssv1.AcquireLeaseRequest]) (*connect.Response[vssv1.AcquireLeaseResponse], error) {
	if c.h.leases == nil {
		return nil, errNoLeases
	}
	return unary(c.h, ctx, req.Msg, c.h.leases.AcquireLease)
}

func (c connectService) RenewLease(ctx context.Context, req *connect.Request[vssv1.RenewLeaseRequest]) (*connect.Response[vssv1.RenewLeaseResponse], error) {
	if c.h.leases == nil {
		return nil, errNoLeases
	}
	return unary(c.h, ctx, req.Msg, c.h.leases.RenewLease)
}

func (c connectService) ReleaseLease(ctx context.Context, req *connect.Request[vssv1.ReleaseLeaseRequest]) (*connect.Response[vssv1.ReleaseLeaseResponse], error) {
	if c.h.leases == nil {
		return nil, errNoLeases
	}
	return unary(c.h, ctx, req.Msg, c.h.leases.ReleaseLease)
}

func (c connectService) GetLease(ctx context.Context, req *connect.Request[vssv1.GetLeaseRequest]) (*connect.Response[vssv1.GetLeaseResponse], error) {
	if c.h.leases == nil {
		return nil, errNoLeases
	}
	return unary(c.h, ctx, req.Msg, c.h.leases.GetLease)
}

// The errors of the feed and lease RPCs on a store that keeps neither.
var (
	errNoFeed   = connect.NewError(connect.CodeUnimplemented, errors.New("this server's store keeps no change feed"))
	errNoLeases = connect.NewError(connect.CodeUnimplemented, errors.New("this server's store keeps no leases"))
)

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
		if r.URL.Path == vssv1connect.VssServiceWatchChangesProcedure {
			// A change stream gives its slot back once it is open (see
			// Feed.WatchChanges) and bounds the writing of each of its messages through
			// the response controller.
			ctx, release = withEarlyRelease(ctx, release)
			ctx = context.WithValue(ctx, responseControllerKey{}, http.NewResponseController(w))
		}
		defer release()
		svc.ServeHTTP(w, r.WithContext(ctx))
	})
}
