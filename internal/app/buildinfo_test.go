package app

import (
	"runtime"
	"testing"

	"github.com/govss/vss/internal/buildinfo"
)

// TestBuildInfoMetric scrapes vss_build_info: 1, with the build the configuration names,
// or Go's own build information when it names none.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		build buildinfo.Info
		want  map[string]string
	}{
		{"given", buildinfo.Info{Version: "v1.2.3", Commit: "abc123", Date: "2001-02-03T04:05:06Z", GoVersion: "go1.99"},
			map[string]string{"version": "v1.2.3", "commit": "abc123", "goversion": "go1.99"}},
		{"default", buildinfo.Info{}, map[string]string{"goversion": runtime.Version()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Observability: ObservabilityConfig{Build: tc.build}})
			fams := scrape(t, base)
			if got := counterValue(t, fams, MetricBuildInfo, tc.want); got != 1 {
				t.Errorf("%s%v = %v, want 1", MetricBuildInfo, tc.want, got)
			}
			if n := len(fams[MetricBuildInfo].GetMetric()); n != 1 {
				t.Errorf("%s has %d series, want 1", MetricBuildInfo, n)
			}
		})
	}
}
