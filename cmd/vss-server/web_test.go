package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseConfigCORSAndExplorer(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, _, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil || cfg.CORSOrigins != nil || cfg.Explorer {
		t.Fatalf("defaults: CORS %q, explorer %v, %v", cfg.CORSOrigins, cfg.Explorer, err)
	}
	cfg, _, err = parseConfig(nil, env(map[string]string{"VSS_CORS_ORIGINS": " https://a.example , ,http://localhost:5173", "VSS_EXPLORER": "true"}), io.Discard)
	if err != nil || !slices.Equal(cfg.CORSOrigins, []string{"https://a.example", "http://localhost:5173"}) || !cfg.Explorer {
		t.Fatalf("from the environment: CORS %q, explorer %v, %v", cfg.CORSOrigins, cfg.Explorer, err)
	}
	cfg, _, err = parseConfig([]string{"--cors-origins", "*", "--explorer=false"}, env(map[string]string{"VSS_CORS_ORIGINS": "https://a.example", "VSS_EXPLORER": "1"}), io.Discard)
	if err != nil || !slices.Equal(cfg.CORSOrigins, []string{"*"}) || cfg.Explorer {
		t.Fatalf("flags must win: CORS %q, explorer %v, %v", cfg.CORSOrigins, cfg.Explorer, err)
	}
}

func TestParseConfigExplorerAllowedServers(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, _, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil || cfg.ExplorerAllowedServers != nil {
		t.Fatalf("default: %q, %v; want none (only the explorer's own server)", cfg.ExplorerAllowedServers, err)
	}
	cfg, _, err = parseConfig(nil, env(map[string]string{"VSS_EXPLORER_ALLOWED_SERVERS": " https://a.example , ,http://127.0.0.1:9000"}), io.Discard)
	if err != nil || !slices.Equal(cfg.ExplorerAllowedServers, []string{"https://a.example", "http://127.0.0.1:9000"}) {
		t.Fatalf("from the environment: %q, %v", cfg.ExplorerAllowedServers, err)
	}
	cfg, _, err = parseConfig([]string{"--explorer-allowed-servers", "https://b.example"},
		env(map[string]string{"VSS_EXPLORER_ALLOWED_SERVERS": "https://a.example"}), io.Discard)
	if err != nil || !slices.Equal(cfg.ExplorerAllowedServers, []string{"https://b.example"}) {
		t.Fatalf("flags must win: %q, %v", cfg.ExplorerAllowedServers, err)
	}
}
