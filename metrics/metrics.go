// Package metrics serves rexray's Prometheus metrics (client_golang) on a
// registry of its own: the calls of every front door by op and result with
// their latency, what the engine did (its events), and its state at each
// scrape (volumes, holds, leases, mounted volumes' use), beside Go's
// runtime metrics.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/events"
)

// The front doors, as the door label names them.
const (
	Docker = "docker" // Docker's volume plugin API
	CSI    = "csi"
	Admin  = "admin" // the operator's calls (rexray volume ..., dvdcli)
)

// Source is the engine's state, read at each scrape.
type Source interface {
	Stats(ctx context.Context) (engine.Stats, error)
}

// Metrics holds the registry and what the calls and events add to it.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	events    *prometheus.CounterVec
	copyBytes *prometheus.CounterVec
	copySecs  *prometheus.CounterVec
	catalogue *prometheus.CounterVec
}

// latencyBuckets span a cached Get (milliseconds) to a Mount that formats
// a large volume, up to the 25 s a call may take.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25}

// New is the metrics of the engine src.
func New(src Source) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexray_requests_total", Help: "Calls answered, by front door, op and result (ok or error).",
		}, []string{"door", "op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rexray_request_duration_seconds", Help: "How long calls took, by front door and op.", Buckets: latencyBuckets,
		}, []string{"door", "op"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexray_events_total", Help: "What the engine did, by kind (create, attach, mount, unmount, detach, remove, preempt, lease-lost, fence, stale-hold, copy, snapshot, catalogue).",
		}, []string{"kind"}),
		copyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexray_copy_bytes_total", Help: "Bytes of volumes copied (kind copy: a volume made from a volume or a snapshot) and of snapshots taken (kind snapshot).",
		}, []string{"kind"}),
		copySecs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexray_copy_seconds_total", Help: "Seconds spent copying, by kind (copy, snapshot).",
		}, []string{"kind"}),
		catalogue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rexray_catalogue_answers_total", Help: "Answers this host's catalogue gave because the service's platform did not answer.",
		}, []string{"service"}),
	}
	for _, k := range events.Kinds() {
		m.events.WithLabelValues(string(k)) // every kind shows, 0 until it happens
	}
	m.reg.MustRegister(m.requests, m.latency, m.events, m.copyBytes, m.copySecs, m.catalogue,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newState(src))
	return m
}

// Request counts one call of a front door.
func (m *Metrics) Request(door, op string, err error, took time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.requests.WithLabelValues(door, op, result).Inc()
	m.latency.WithLabelValues(door, op).Observe(took.Seconds())
}

// Observe implements events.Observer.
func (m *Metrics) Observe(ev events.Event) {
	m.events.WithLabelValues(string(ev.Kind)).Inc()
	switch ev.Kind {
	case events.Copy, events.Snapshot:
		m.copyBytes.WithLabelValues(string(ev.Kind)).Add(float64(ev.Bytes))
		m.copySecs.WithLabelValues(string(ev.Kind)).Add(ev.Seconds)
	case events.Catalogue:
		m.catalogue.WithLabelValues(ev.Service).Inc()
	}
}

// Handler serves /metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Listen opens addr (REXRAY_METRICS_ADDR) for Serve: at start, so that an
// address that cannot be served stops the plugin with its name.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.New("REXRAY_METRICS_ADDR=" + addr + ": " + err.Error() + " (give host:port, such as 127.0.0.1:9253)")
	}
	return l, nil
}

// Serve answers GET /metrics on l until ctx ends.
func (m *Metrics) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
