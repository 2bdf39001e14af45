package main

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestCompose loads deploy/compose/compose.yaml with the loader Docker Compose itself uses,
// which validates it against the Compose specification and interpolates its variables, and
// checks that it runs the image this package builds the way the image expects: its port,
// its healthcheck, a database URL that names the PostgreSQL service and its user and
// database, started only once PostgreSQL is healthy. No container engine runs here, so
// this is as far as the file can be tried.
func TestCompose(t *testing.T) {
	file, err := filepath.Abs(filepath.Join("..", "..", "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	load := func(env map[string]string) (*types.Project, error) {
		return loader.LoadWithContext(context.Background(), types.ConfigDetails{
			WorkingDir:  filepath.Dir(file),
			ConfigFiles: []types.ConfigFile{{Filename: file}},
			Environment: env,
		})
	}
	for _, missing := range []string{"VSS_IMAGE", "VSS_DB_PASSWORD"} {
		env := map[string]string{"VSS_IMAGE": "vss-server:v0.0.0-test", "VSS_DB_PASSWORD": "0123abcd"}
		delete(env, missing)
		if _, err := load(env); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v, want an error naming it", missing, err)
		}
	}
	p, err := load(map[string]string{"VSS_IMAGE": "vss-server:v0.0.0-test", "VSS_DB_PASSWORD": "0123abcd"})
	if err != nil {
		t.Fatal(err)
	}
	pg, ok := p.Services["postgres"]
	if !ok {
		t.Fatalf("no postgres service in %v", p.ServiceNames())
	}
	vss, ok := p.Services["vss-server"]
	if !ok {
		t.Fatalf("no vss-server service in %v", p.ServiceNames())
	}
	if vss.Image != "vss-server:v0.0.0-test" {
		t.Errorf("vss-server runs %q, not VSS_IMAGE", vss.Image)
	}
	if !strings.HasPrefix(pg.Image, "postgres:15") {
		t.Errorf("postgres runs %q", pg.Image)
	}
	if d, ok := vss.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy || pg.HealthCheck == nil {
		t.Errorf("vss-server does not wait for a healthy postgres: %+v, postgres healthcheck %+v", vss.DependsOn, pg.HealthCheck)
	}

	img, err := Build(Options{Binary: "/dev/null", Arch: "amd64", Created: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if vss.HealthCheck == nil || !slices.Equal([]string(vss.HealthCheck.Test), cfg.Config.Healthcheck.Test) {
		t.Errorf("vss-server healthcheck %+v, want the image's %q", vss.HealthCheck, cfg.Config.Healthcheck.Test)
	}
	if len(vss.Ports) != 1 || strconv.Itoa(int(vss.Ports[0].Target)) != port || vss.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("vss-server ports %+v, want the image's %s published on the host's loopback only", vss.Ports, port)
	}

	env := func(s types.ServiceConfig, k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	u, err := url.Parse(env(vss, "VSS_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	switch {
	case u.Scheme != "postgres" || u.Hostname() != "postgres" || u.Port() != "5432":
		t.Errorf("VSS_DATABASE_URL %s does not reach the postgres service", u.Redacted())
	case u.User.Username() != env(pg, "POSTGRES_USER") || pass != env(pg, "POSTGRES_PASSWORD") || pass != "0123abcd":
		t.Errorf("VSS_DATABASE_URL %s does not log in as postgres's POSTGRES_USER with VSS_DB_PASSWORD", u.Redacted())
	case strings.TrimPrefix(u.Path, "/") != env(pg, "POSTGRES_DB"):
		t.Errorf("VSS_DATABASE_URL names database %q, postgres creates %q", u.Path, env(pg, "POSTGRES_DB"))
	}
	if len(pg.Ports) != 0 {
		t.Errorf("postgres publishes ports %+v; it should be reachable only from the compose network", pg.Ports)
	}
}
