package csi

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is the host's /metrics, parsed, and its text.
func (h *host) scrape() (map[string]float64, string) {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.met.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		h.t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key+",count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, text
}

// The counters move by exactly the calls made, through both doors, and
// the state gauges follow; promtool, where it is installed (make setup
// installs Debian's prometheus), accepts the output.
func TestMetricsCountWhatWasDone(t *testing.T) {
	h := memHost(t)
	before, _ := h.scrape()
	h.docker("VolumeDriver.Create", map[string]any{"Name": "m1", "Opts": map[string]string{"size": "64MiB"}}, nil)
	h.docker("VolumeDriver.Mount", map[string]string{"Name": "m1", "ID": strings.Repeat("b", 64)}, nil)
	h.docker("VolumeDriver.List", struct{}{}, nil)
	h.docker("VolumeDriver.List", struct{}{}, nil)
	ctx := context.Background()
	if _, err := h.node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: "nope", StagingTargetPath: "/s/nope", VolumeCapability: writer}); err == nil {
		t.Fatal("staging a missing volume succeeded")
	}
	after, text := h.scrape()
	for key, want := range map[string]float64{
		"rexray_requests_total,door=docker,op=Create,result=ok":          1,
		"rexray_requests_total,door=docker,op=Mount,result=ok":           1,
		"rexray_requests_total,door=docker,op=List,result=ok":            2,
		"rexray_requests_total,door=csi,op=NodeStageVolume,result=error": 1,
		"rexray_request_duration_seconds,door=docker,op=Mount,count":     1,
		"rexray_events_total,kind=create":                                1,
		"rexray_events_total,kind=attach":                                1,
		"rexray_events_total,kind=mount":                                 1,
		"rexray_events_total,kind=unmount":                               0,
		"rexray_volumes_known,service=mem":                               1,
		"rexray_volumes_attached,service=mem":                            1,
		"rexray_holds,kind=docker":                                       1,
	} {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	if _, ok := after["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics (go_goroutines)")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: its check is left to the integration suite")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewBufferString(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
