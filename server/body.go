package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// SmallBodyBytes limits the requests of the services other than VSS itself: the gRPC
// health service and gRPC reflection (a whole reflection stream, and each of its
// messages after decompression). Their requests are a service or symbol name.
const SmallBodyBytes = 16 << 10

// envelopeSlack is what the Connect, gRPC and gRPC-Web framing may add to a VSS
// request's message on the wire (the 5-byte envelope and an end-of-stream frame).
const envelopeSlack = 4 << 10

// bodyRules is the one place that bounds what the server reads from request bodies.
// Every request passes through it before it reaches a handler:
//
//   - the VSS HTTP API (/vss/) reads at most the body limit, and refuses compressed
//     bodies (Content-Encoding other than identity) with 415;
//   - each RPC service mounted with mountRPC reads at most its limit, and decompresses
//     gzip (the only compression it accepts) only up to that limit (see rpcOptions);
//   - every other route (LNURL-auth, the explorer, /metrics, /healthz, /readyz, unknown
//     paths) takes no body at all: a request with one gets 413 before any handler runs.
type bodyRules struct {
	next http.Handler
	// legacy is the body limit of the VSS HTTP API.
	legacy int64
	// rpc maps the path prefix of each mounted RPC service ("/vss.v1.VssService/") to the
	// limit of its request bodies.
	rpc  map[string]int64
	errs *connect.ErrorWriter
}

func newBodyRules(legacyLimit int64) *bodyRules {
	return &bodyRules{legacy: legacyLimit, rpc: map[string]int64{}, errs: connect.NewErrorWriter()}
}

// mountRPC mounts the Connect, gRPC and gRPC-Web service that newHandler returns, built
// with rpcOptions for messages of at most limit bytes (plus extra), and bounds its
// request bodies. Every RPC service the server serves is mounted here.
func (b *bodyRules) mountRPC(mux *http.ServeMux, limit int64, newHandler func(...connect.HandlerOption) (string, http.Handler), extra ...connect.HandlerOption) {
	path, h := newHandler(append(rpcOptions(limit), extra...)...)
	b.rpc[path] = limit + envelopeSlack
	mux.Handle(path, h)
}

func (b *bodyRules) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit, kind := b.ruleFor(r.URL.Path)
	switch kind {
	case bodyNone:
		if r.ContentLength != 0 {
			b.refuse(w, r, kind, http.StatusRequestEntityTooLarge, "this endpoint takes no request body")
			return
		}
	case bodyLegacy:
		if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			b.refuse(w, r, kind, http.StatusUnsupportedMediaType,
				"compressed request bodies are not accepted (Content-Encoding "+QuoteInput(ce)+"): send the protobuf message uncompressed")
			return
		}
	case bodyRPC:
		for _, enc := range rpcEncodings(r) {
			if enc != "" && enc != "identity" && enc != "gzip" {
				w.Header().Set("Accept-Encoding", "gzip")
				w.Header().Set("Connect-Accept-Encoding", "gzip")
				w.Header().Set("Grpc-Accept-Encoding", "gzip")
				b.refuse(w, r, kind, http.StatusUnsupportedMediaType, "unknown compression "+QuoteInput(enc)+": supported encodings are gzip")
				return
			}
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	b.next.ServeHTTP(w, r)
}

type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLegacy
	bodyRPC
)

func (b *bodyRules) ruleFor(path string) (int64, bodyKind) {
	if strings.HasPrefix(path, LegacyPathPrefix) {
		return b.legacy, bodyLegacy
	}
	if i := strings.IndexByte(path[min(1, len(path)):], '/'); i >= 0 {
		if limit, ok := b.rpc[path[:i+2]]; ok {
			return limit, bodyRPC
		}
	}
	return 0, bodyNone
}

// rpcEncodings lists the compressions a request to an RPC service declares: Connect
// unary (Content-Encoding, or the compression parameter of a GET), Connect streaming
// and gRPC/gRPC-Web.
func rpcEncodings(r *http.Request) []string {
	encs := []string{r.Header.Get("Content-Encoding"), r.Header.Get("Connect-Content-Encoding"), r.Header.Get("Grpc-Encoding")}
	if r.Method == http.MethodGet {
		encs = append(encs, r.URL.Query().Get("compression"))
	}
	return encs
}

func (b *bodyRules) refuse(w http.ResponseWriter, r *http.Request, kind bodyKind, status int, msg string) {
	switch {
	case kind == bodyLegacy:
		writeLegacyError(w, status, &Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Message: msg})
	case kind == bodyRPC && b.errs.IsSupported(r):
		code := connect.CodeUnimplemented // what Connect and gRPC prescribe for an unknown compression
		if status == http.StatusRequestEntityTooLarge {
			code = connect.CodeResourceExhausted
		}
		_ = b.errs.Write(w, r, connect.NewError(code, errors.New(msg)))
	default:
		if r.ProtoMajor == 1 {
			// The unread body is not worth draining. (Over HTTP/2 the stream alone is reset;
			// Connection: close there would end every other stream of the connection.)
			w.Header().Set("Connection", "close")
		}
		http.Error(w, msg, status)
	}
}

// rpcOptions are the options of every RPC service the server mounts (see mountRPC):
// messages of at most limit bytes after decompression, gzip the only compression (of
// requests; responses are not compressed), and decoding errors that quote at most a short prefix of the client's input.
//
// connect-go's own gzip support checks the limit after decompression, but then reads the
// rest of the decompressed stream to report its size: a few megabytes of gzip make the
// server inflate gigabytes. boundedGzip stops at the limit instead.
func rpcOptions(limit int64) []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithReadMaxBytes(int(min(limit, int64(^uint(0)>>1)))),
		connect.WithCompression("gzip",
			func() connect.Decompressor { return &boundedGzip{limit: limit} },
			func() connect.Compressor { return gzip.NewWriter(io.Discard) }),
		// Responses are small (health) or encrypted values that do not compress: gzip on a
		// response would cost CPU and save nothing. Compressed requests are accepted.
		connect.WithCompressMinBytes(math.MaxInt32),
		connect.WithCodec(clippedProto{}),
		connect.WithCodec(clippedJSON{name: "json"}),
		connect.WithCodec(clippedJSON{name: "json; charset=utf-8"}),
	}
}

// errDecompressedTooLarge ends the decompression of a message that passed its limit.
var errDecompressedTooLarge = errors.New("the decompressed message is larger than the server's limit")

// boundedGzip is a gzip decompressor that yields at most limit+1 bytes (enough for
// connect-go to see that the message is over its limit) and then fails, so that no more
// of the message is ever inflated.
type boundedGzip struct {
	gz    gzip.Reader
	limit int64
	left  int64
}

func (d *boundedGzip) Read(p []byte) (int, error) {
	if d.left <= 0 {
		return 0, errDecompressedTooLarge
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.gz.Read(p)
	d.left -= int64(n)
	return n, err
}

func (d *boundedGzip) Reset(r io.Reader) error {
	d.left = d.limit + 1
	return d.gz.Reset(r)
}

func (d *boundedGzip) Close() error { return d.gz.Close() }

// clippedProto is connect-go's binary protobuf codec with decoding errors clipped.
type clippedProto struct{}

func (clippedProto) Name() string { return "proto" }

func (clippedProto) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	return proto.Marshal(pm)
}

func (clippedProto) Unmarshal(b []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", m)
	}
	if err := proto.Unmarshal(b, pm); err != nil {
		return errors.New(clipMessage(err.Error()))
	}
	return nil
}

// MarshalStable and IsBinary make the codec usable for Connect GET requests.
func (clippedProto) MarshalStable(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(pm)
}

func (clippedProto) IsBinary() bool { return true }

// clippedJSON is connect-go's protobuf JSON codec (unknown fields ignored) with decoding
// errors clipped: protojson quotes the offending input in its errors.
type clippedJSON struct{ name string }

func (c clippedJSON) Name() string { return c.name }

func (clippedJSON) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	return protojson.Marshal(pm)
}

func (clippedJSON) Unmarshal(b []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", m)
	}
	if len(b) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, pm); err != nil {
		return errors.New(clipMessage(err.Error()))
	}
	return nil
}

func (c clippedJSON) MarshalStable(m any) ([]byte, error) {
	out, err := c.Marshal(m)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

func (clippedJSON) IsBinary() bool { return false }

// maxEcho is the most of a client's input that an error message quotes.
const maxEcho = 64

// QuoteInput quotes client input s for an error message, cut to its first maxEcho bytes
// when it is longer (the cut is marked). Every error message that repeats client input
// uses it, so that no answer echoes an unbounded part of a request.
func QuoteInput(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxEcho]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// clipMessage bounds a message built by other code (a decoder's error) that may contain
// client input.
func clipMessage(msg string) string {
	const most = 4 * maxEcho
	if len(msg) <= most {
		return msg
	}
	return strings.ToValidUTF8(msg[:most], "") + "…"
}
