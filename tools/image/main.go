// Command image builds the vss-server container image without a container engine, with
// go-containerregistry: one layer on an empty base holding the static vss-server binary,
// a passwd entry for the unprivileged user it runs as (65532), its data directory and
// the license files. Every file time and the image's creation time are --created, so the
// same binary and arguments give the same image, byte for byte.
//
// It writes a tarball that `docker load` and `podman load` read:
//
//	go run ./image --binary ../bin/linux-amd64/vss-server --arch amd64 --version v0.1.0 \
//	    --revision $(git rev-parse HEAD) --created $(git log -1 --format=%ct) --out ../bin/vss-server-image.tar
//
// (run from tools/; `make image` does it). --inspect FILE prints an image's digest and
// configuration instead.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's layout.
const (
	binaryPath = "/usr/local/bin/vss-server"
	dataDir    = "/data"
	uid        = 65532 // the user the server runs as; it owns dataDir
	port       = "8080"
)

// Options describe one image.
type Options struct {
	Binary   string // the vss-server binary: static, for linux/Arch
	Arch     string // amd64, arm64
	Version  string // what vss-server --version reports
	Revision string // the commit
	Created  time.Time
	Licenses []string // files copied to /usr/share/doc/vss-server
	Tag      string   // the tag `docker load` gives it
}

func main() {
	var o Options
	var created int64
	var out, inspect string
	flag.StringVar(&o.Binary, "binary", "", "the static linux vss-server `binary` to put in the image")
	flag.StringVar(&o.Arch, "arch", "amd64", "the binary's architecture (amd64, arm64)")
	flag.StringVar(&o.Version, "version", "dev", "the image's version label")
	flag.StringVar(&o.Revision, "revision", "", "the commit it was built from")
	flag.Int64Var(&created, "created", 0, "the image's creation time and every file's time, in `seconds` since 1970 (the commit's time)")
	flag.StringVar(&o.Tag, "tag", "vss-server:dev", "the `tag` docker load gives the image")
	flag.StringVar(&out, "out", "", "write the image tarball to this `file`")
	flag.StringVar(&inspect, "inspect", "", "print the digest and configuration of the image tarball `file` and exit")
	licenses := flag.String("licenses", "", "license `files`, separated by commas, to copy into /usr/share/doc/vss-server")
	flag.Parse()
	if inspect != "" {
		if err := printInspect(os.Stdout, inspect); err != nil {
			fail(err)
		}
		return
	}
	if o.Binary == "" || out == "" {
		fail(errors.New("--binary and --out are required"))
	}
	o.Created = time.Unix(created, 0).UTC()
	if *licenses != "" {
		o.Licenses = strings.Split(*licenses, ",")
	}
	img, err := Build(o)
	if err != nil {
		fail(err)
	}
	if err := Write(out, o.Tag, img); err != nil {
		fail(err)
	}
	digest, _ := img.Digest()
	fmt.Printf("%s: %s (%s)\n", out, o.Tag, digest)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}

// Build makes the image.
func Build(o Options) (v1.Image, error) {
	layer, err := rootLayer(o)
	if err != nil {
		return nil, err
	}
	created := o.Created.Format(time.RFC3339)
	cfg := &v1.ConfigFile{
		Architecture: o.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.Created},
		RootFS:       v1.RootFS{Type: "layers"}, // the only type the OCI image spec has; the layer's diff id is appended below
		Config: v1.Config{
			User:       strconv.Itoa(uid) + ":" + strconv.Itoa(uid),
			Entrypoint: []string{binaryPath},
			// The embedded store in the volume, on every interface of the container; a
			// --database-url (VSS_DATABASE_URL) selects PostgreSQL instead.
			Env: []string{
				"PATH=/usr/local/bin",
				"VSS_LISTEN=0.0.0.0:" + port,
				"VSS_DATA_DIR=" + dataDir,
			},
			WorkingDir:   dataDir,
			ExposedPorts: map[string]struct{}{port + "/tcp": {}},
			Volumes:      map[string]struct{}{dataDir: {}},
			Healthcheck: &v1.HealthConfig{
				Test:        []string{"CMD", binaryPath, "healthcheck"},
				Interval:    10 * time.Second,
				Timeout:     5 * time.Second,
				StartPeriod: 30 * time.Second,
				Retries:     3,
			},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "vss-server",
				"org.opencontainers.image.description": "Versioned Storage Service for Lightning wallets: the VSS HTTP API and Connect, gRPC, gRPC-Web",
				"org.opencontainers.image.source":      "https://github.com/govss/vss",
				"org.opencontainers.image.licenses":    "MIT OR Apache-2.0",
				"org.opencontainers.image.version":     o.Version,
				"org.opencontainers.image.revision":    o.Revision,
				"org.opencontainers.image.created":     created,
			},
		},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "vss image builder (tools/image)", Comment: "vss-server " + o.Version},
	})
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: o.Created})
}

// rootLayer is the image's only layer, its entries in a fixed order with fixed times.
func rootLayer(o Options) (v1.Layer, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(path string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: mode, Uid: owner, Gid: owner, ModTime: o.Created, Format: tar.FormatPAX})
	}
	file := func(path string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(data)), ModTime: o.Created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nvss:x:65532:65532:vss-server:/data:/sbin/nologin\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nvss:x:65532:\n")) },
		func() error { return dir("data", 0o700, uid) },
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("usr", 0o755, 0) },
		func() error { return dir("usr/local", 0o755, 0) },
		func() error { return dir("usr/local/bin", 0o755, 0) },
		func() error { return file(binaryPath[1:], 0o755, bin) },
		func() error { return dir("usr/share", 0o755, 0) },
		func() error { return dir("usr/share/doc", 0o755, 0) },
		func() error { return dir("usr/share/doc/vss-server", 0o755, 0) },
	}
	for _, l := range o.Licenses {
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		steps = append(steps, func() error { return file("usr/share/doc/vss-server/"+filepath.Base(l), 0o644, data) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// Write saves img as a tarball that docker load and podman load read, tagged tag.
func Write(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, ref, img)
}

// Inspection is what --inspect prints.
type Inspection struct {
	Digest string        `json:"digest"`
	Config v1.ConfigFile `json:"config"`
	Layers []string      `json:"layers"`
}

// Inspect reads an image tarball written by Write.
func Inspect(path string) (*Inspection, v1.Image, error) {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return nil, nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, err
	}
	in := &Inspection{Digest: digest.String(), Config: *cfg}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, nil, err
		}
		in.Layers = append(in.Layers, d.String())
	}
	return in, img, nil
}

func printInspect(w io.Writer, path string) error {
	in, _, err := Inspect(path)
	if err != nil {
		return err
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(in)
}
