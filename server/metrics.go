package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// Metrics records what the server does, for Prometheus. Create it with NewMetrics and
// pass it in Options.Metrics; a nil *Metrics records nothing and costs nothing.
//
// Every label value is precomputed: recording a request is a few array lookups and
// atomic adds, with no allocation and no map lookup.
type Metrics struct {
	requests  [numRPCs][numBindings][numResults]prometheus.Counter
	duration  [numRPCs][numBindings]prometheus.Observer
	reqBytes  [numRPCs][numBindings]prometheus.Observer
	respBytes [numRPCs][numBindings]prometheus.Observer
	inFlight  prometheus.Gauge
	authFails [numAuthReasons]prometheus.Counter
	refusedBy [numRefusals]prometheus.Counter
}

// The metric names, for documentation and tests.
const (
	MetricRequests         = "vss_requests_total"
	MetricRequestDuration  = "vss_request_duration_seconds"
	MetricRequestBytes     = "vss_request_message_bytes"
	MetricResponseBytes    = "vss_response_message_bytes"
	MetricInFlight         = "vss_requests_in_flight"
	MetricAuthFailures     = "vss_auth_failures_total"
	MetricOverloadRefusals = "vss_overload_refusals_total"
)

// rpc names one VSS operation.
type rpc uint8

const (
	rpcNone rpc = iota // not a VSS operation: nothing is recorded
	rpcGetObject
	rpcPutObjects
	rpcDeleteObject
	rpcListKeyVersions
	numRPCs
)

var rpcNames = [numRPCs]string{"", "GetObject", "PutObjects", "DeleteObject", "ListKeyVersions"}

// rpcOfProcedure maps a Connect procedure path to its operation.
func rpcOfProcedure(path string) rpc {
	switch path {
	case vssv1connect.VssServiceGetObjectProcedure:
		return rpcGetObject
	case vssv1connect.VssServicePutObjectsProcedure:
		return rpcPutObjects
	case vssv1connect.VssServiceDeleteObjectProcedure:
		return rpcDeleteObject
	case vssv1connect.VssServiceListKeyVersionsProcedure:
		return rpcListKeyVersions
	}
	return rpcNone
}

// binding names the protocol a request came in with.
type binding uint8

const (
	bindingVSSHTTP binding = iota // the existing VSS HTTP API under /vss/
	bindingConnect
	bindingGRPC
	bindingGRPCWeb
	numBindings
)

var bindingNames = [numBindings]string{"vss-http", "connect", "grpc", "grpc-web"}

// bindingOfContentType tells the three protocols of the Connect handler apart by the
// request's Content-Type, as the handler itself does.
func bindingOfContentType(ct string) binding {
	switch {
	case strings.HasPrefix(ct, "application/grpc-web"):
		return bindingGRPCWeb
	case strings.HasPrefix(ct, "application/grpc"):
		return bindingGRPC
	}
	return bindingConnect
}

// result is the outcome label of a request: ok, or the VSS error it ended with.
type result uint8

const (
	// resultRejected is the outcome of a request the binding refused before the
	// service saw it (a body that does not decode or is too large, a protocol error);
	// it is reported as invalid_request.
	resultRejected result = iota
	resultOK
	resultNoSuchKey
	resultConflict
	resultInvalid
	resultAuth
	resultInternal
	resultUnavailable
	resultQuota
	resultRateLimited
	resultOverloaded
	numResults
)

var resultNames = [numResults]string{
	"invalid_request", "ok", "no_such_key", "conflict", "invalid_request", "auth",
	"internal", "unavailable", "quota", "rate_limited", "overloaded",
}

// resultOf is the outcome label of a classified error.
func resultOf(e *Error) result {
	switch e.Kind {
	case KindQuota:
		return resultQuota
	case KindRateLimited:
		return resultRateLimited
	case KindOverloaded:
		return resultOverloaded
	}
	switch e.Code {
	case vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:
		return resultNoSuchKey
	case vssv1.ErrorCode_CONFLICT_EXCEPTION:
		return resultConflict
	case vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION:
		return resultInvalid
	case vssv1.ErrorCode_AUTH_EXCEPTION:
		return resultAuth
	}
	if e.Unavailable {
		return resultUnavailable
	}
	return resultInternal
}

// authReason is the bounded set of reasons an authentication failure is counted under.
// It is derived from the shape of the request, never from the user or the message.
type authReason uint8

const (
	authMissing   authReason = iota // no Authorization header
	authSignature                   // a signature header that was refused
	authBearer                      // a bearer token (JWT) that was refused
	authMultiple                    // more than one Authorization header
	numAuthReasons
)

var authReasonNames = [numAuthReasons]string{"missing", "signature", "bearer", "multiple_headers"}

func authReasonOf(h http.Header) authReason {
	v := h.Values("Authorization")
	switch {
	case len(v) == 0 || v[0] == "":
		return authMissing
	case len(v) > 1:
		return authMultiple
	case len(v[0]) > 7 && strings.EqualFold(v[0][:7], "bearer "):
		return authBearer
	}
	return authSignature
}

// durationBuckets cover 0.5 ms (a cached read on a local database) to 10 s (the point
// at which clients give up).
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// sizeBuckets cover empty messages to the largest bodies the server accepts by default.
var sizeBuckets = prometheus.ExponentialBuckets(64, 4, 11) // 64 B .. 64 MiB

// NewMetrics creates the server's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "VSS requests served, by operation, binding (vss-http, connect, grpc, grpc-web) and result (ok or the VSS error: no_such_key, conflict, invalid_request, auth, internal, unavailable, quota, rate_limited, overloaded).",
	}, []string{"rpc", "binding", "result"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricRequestDuration,
		Help:    "Time to serve a VSS request, from authentication to the response, by operation and binding.",
		Buckets: durationBuckets,
	}, []string{"rpc", "binding"})
	reqBytes := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricRequestBytes,
		Help:    "Size of decoded VSS request messages (protobuf encoding), by operation and binding.",
		Buckets: sizeBuckets,
	}, []string{"rpc", "binding"})
	respBytes := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricResponseBytes,
		Help:    "Size of successful VSS response messages (protobuf encoding), by operation and binding.",
		Buckets: sizeBuckets,
	}, []string{"rpc", "binding"})
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricInFlight,
		Help: "VSS requests being served now.",
	})
	authFails := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricAuthFailures,
		Help: "Requests refused by authentication, by reason: missing (no Authorization header), signature (a refused signature header), bearer (a refused bearer token), multiple_headers.",
	}, []string{"reason"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricOverloadRefusals,
		Help: "Requests refused for want of a request slot or of upload bytes, by reason: server (every VSS slot taken), user (the user holds its share), public (every slot of the unauthenticated endpoints taken), address (the client address holds its share of those), server_upload (the upload budget of all VSS calls is spent), user_upload (the user holds its share of it).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{requests, duration, reqBytes, respBytes, inFlight, authFails, refused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &Metrics{inFlight: inFlight}
	for i := range numRefusals {
		m.refusedBy[i] = refused.WithLabelValues(refusalNames[i])
	}
	for r := rpcGetObject; r < numRPCs; r++ {
		for b := range numBindings {
			for res := range numResults {
				if res == resultRejected {
					continue // shares the invalid_request series
				}
				m.requests[r][b][res] = requests.WithLabelValues(rpcNames[r], bindingNames[b], resultNames[res])
			}
			m.requests[r][b][resultRejected] = m.requests[r][b][resultInvalid]
			m.duration[r][b] = duration.WithLabelValues(rpcNames[r], bindingNames[b])
			m.reqBytes[r][b] = reqBytes.WithLabelValues(rpcNames[r], bindingNames[b])
			m.respBytes[r][b] = respBytes.WithLabelValues(rpcNames[r], bindingNames[b])
		}
	}
	for i := range numAuthReasons {
		m.authFails[i] = authFails.WithLabelValues(authReasonNames[i])
	}
	return m, nil
}

// begin counts a request in flight and returns its start time.
func (m *Metrics) begin() time.Time {
	if m == nil {
		return time.Time{}
	}
	m.inFlight.Inc()
	return time.Now()
}

// end records a request that began at start: its outcome and sizes come from the
// request state that the service and the binding filled in.
func (m *Metrics) end(ctx context.Context, op rpc, b binding, start time.Time) {
	if m == nil {
		return
	}
	m.inFlight.Dec()
	if op == rpcNone {
		return
	}
	m.duration[op][b].Observe(time.Since(start).Seconds())
	st := stateFrom(ctx)
	if st == nil {
		m.requests[op][b][resultRejected].Inc()
		return
	}
	m.requests[op][b][st.result].Inc()
	if st.reqBytes >= 0 {
		m.reqBytes[op][b].Observe(float64(st.reqBytes))
	}
	if st.respBytes >= 0 {
		m.respBytes[op][b].Observe(float64(st.respBytes))
	}
}

// authFailed counts a request that authorization refused; e is the classified error
// (an authorizer's internal failure is not an authentication failure).
func (m *Metrics) authFailed(h http.Header, e *Error) {
	if m == nil || e.Code != vssv1.ErrorCode_AUTH_EXCEPTION {
		return
	}
	m.authFails[authReasonOf(h)].Inc()
}

// refused counts a request refused for want of a request slot.
func (m *Metrics) refused(why refusal) {
	if m == nil {
		return
	}
	m.refusedBy[why].Inc()
}

// requestState is what the server knows about the request being served: its id, and
// for VSS operations the outcome and message sizes that Metrics records. One request is
// served by one goroutine, so it needs no locking.
type requestState struct {
	id        string
	result    result
	reqBytes  int
	respBytes int
}

func newRequestState(id string) *requestState {
	return &requestState{id: id, reqBytes: -1, respBytes: -1}
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestIDKey{}).(*requestState)
	return st
}

// noteResult records the outcome of the request being served. Service.classify calls
// it for every error a request ends with, the bindings for every success, so both
// bindings report outcomes through this one function.
func noteResult(ctx context.Context, r result) {
	if st := stateFrom(ctx); st != nil {
		st.result = r
	}
}

// noteSizes records the sizes of the request and response messages; a negative size
// is unknown.
func noteSizes(ctx context.Context, req, resp int) {
	if st := stateFrom(ctx); st != nil {
		if req >= 0 {
			st.reqBytes = req
		}
		if resp >= 0 {
			st.respBytes = resp
		}
	}
}
