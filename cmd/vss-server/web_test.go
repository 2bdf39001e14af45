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
