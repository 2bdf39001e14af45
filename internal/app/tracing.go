package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/govss/vss/server"
	"github.com/govss/vss/storage/postgres"
)

// tracing is the OpenTelemetry tracing of one running server: a span per VSS request
// (the VSS HTTP API by wrapping the handler, Connect, gRPC and gRPC-Web through
// otelconnect) and a span per PostgreSQL call below it. A nil *tracing is off and adds
// nothing to any request.
//
// It is configured only through the standard OTEL_ environment variables and is on when
// OTEL_TRACES_EXPORTER names an exporter other than none, or when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and
// OTEL_SDK_DISABLED is not true). Exporters: otlp (OTLP over HTTP with protobuf, the
// OTEL_EXPORTER_OTLP_* variables) and console (JSON on standard output). The sampler
// (OTEL_TRACES_SAMPLER), batching (OTEL_BSP_*) and resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) follow their variables too.
//
// Incoming trace context (W3C traceparent) is not trusted as a parent, since clients are
// wallets on the internet: a request's span starts a new trace and links to the
// caller's span.
type tracing struct {
	provider   *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
	tracer     trace.Tracer
}

// tracingEnabled reports whether the OTEL_ variables ask for traces.
func tracingEnabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" {
		return e != "none"
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// newTracing sets up tracing as the OTEL_ variables say, or returns nil when they do
// not ask for it.
func newTracing(ctx context.Context, getenv func(string) string) (*tracing, error) {
	if !tracingEnabled(getenv) {
		return nil, nil
	}
	names := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	if names == "" {
		names = "otlp"
	}
	opts := []sdktrace.TracerProviderOption{}
	for _, name := range strings.Split(names, ",") {
		var exp sdktrace.SpanExporter
		var err error
		switch name = strings.TrimSpace(name); name {
		case "otlp":
			protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
			if protocol == "" {
				protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
			}
			if protocol != "" && protocol != "http/protobuf" {
				return nil, fmt.Errorf("tracing: OTLP protocol %q is not supported: this server exports traces with http/protobuf", protocol)
			}
			exp, err = otlptracehttp.New(ctx)
		case "console":
			exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
		case "none":
			continue
		default:
			return nil, fmt.Errorf("tracing: unsupported OTEL_TRACES_EXPORTER %q: want otlp, console or none", name)
		}
		if err != nil {
			return nil, fmt.Errorf("tracing: %s exporter: %w", name, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	// The later source wins: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override
	// the default service name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "vss-server")),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(res))...)
	return &tracing{
		provider:   tp,
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		tracer:     tp.Tracer("github.com/govss/vss/internal/app"),
	}, nil
}

// shutdown sends the spans not yet exported.
func (t *tracing) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// postgresOptions traces PostgreSQL calls.
func (t *tracing) postgresOptions() []postgres.Option {
	if t == nil {
		return nil
	}
	return []postgres.Option{postgres.WithOpenTelemetry(t.provider)}
}

// interceptors trace Connect, gRPC and gRPC-Web calls.
func (t *tracing) interceptors() ([]connect.Interceptor, error) {
	if t == nil {
		return nil, nil
	}
	i, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(t.provider),
		otelconnect.WithPropagator(t.propagator),
		otelconnect.WithoutMetrics())
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return []connect.Interceptor{i}, nil
}

// wrap gives every request of the VSS HTTP API a server span named after its method
// and path, e.g. "POST /vss/getObject".
func (t *tracing) wrap(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, server.LegacyPathPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		opts := []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithNewRoot(),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", r.URL.Path),
				attribute.String("network.protocol.name", "http"),
				attribute.String("rpc.system", "vss-http")),
		}
		if remote := trace.SpanContextFromContext(t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))); remote.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: remote}))
		}
		ctx, span := t.tracer.Start(r.Context(), r.Method+" "+r.URL.Path, opts...)
		defer span.End()
		sw := &spanWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

// spanWriter records the status of a response for its span.
type spanWriter struct {
	http.ResponseWriter
	status int
}

func (w *spanWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *spanWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
