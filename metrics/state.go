package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// state collects the engine's state at each scrape.
type state struct {
	src                                 Source
	known, attached, holds              *prometheus.Desc
	renewals, renewFailures, used, free *prometheus.Desc
	scrapeErrors                        *prometheus.Desc
}

func newState(src Source) *state {
	d := prometheus.NewDesc
	return &state{
		src:           src,
		known:         d("rexray_volumes_known", "Volumes this host's catalogue knows, by service.", []string{"service"}, nil),
		attached:      d("rexray_volumes_attached", "Volumes something on this host holds (mounted or attached), by service.", []string{"service"}, nil),
		holds:         d("rexray_holds", "Holds on volumes on this host, by kind (docker, legacy, operator-mount, operator-attach, csi, csi-block, csi-stage).", []string{"kind"}, nil),
		renewals:      d("rexray_lease_renewals_total", "Renewals of this host's leases, by service (drivers that keep leases).", []string{"service"}, nil),
		renewFailures: d("rexray_lease_renewal_failures_total", "Lease renewals that failed, by service.", []string{"service"}, nil),
		used:          d("rexray_volume_used_bytes", "Bytes used on each volume mounted here.", []string{"volume", "service"}, nil),
		free:          d("rexray_volume_free_bytes", "Bytes still free on each volume mounted here.", []string{"volume", "service"}, nil),
		scrapeErrors:  d("rexray_state_read_errors", "1 when this scrape could not read the engine's state (the ledger).", nil, nil),
	}
}

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.known, s.attached, s.holds, s.renewals, s.renewFailures, s.used, s.free, s.scrapeErrors} {
		ch <- d
	}
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.src.Stats(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(s.scrapeErrors, prometheus.GaugeValue, failed)
	if err != nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, svc := range st.Services {
		gauge(s.known, float64(svc.Known), svc.Service)
		gauge(s.attached, float64(svc.Attached), svc.Service)
		if svc.Leases != nil {
			ch <- prometheus.MustNewConstMetric(s.renewals, prometheus.CounterValue, float64(svc.Leases.Renewals), svc.Service)
			ch <- prometheus.MustNewConstMetric(s.renewFailures, prometheus.CounterValue, float64(svc.Leases.Failures), svc.Service)
		}
	}
	for kind, n := range st.Holds {
		gauge(s.holds, float64(n), string(kind))
	}
	for _, u := range st.Mounted {
		gauge(s.used, float64(u.Usage.UsedBytes), u.Volume, u.Service)
		gauge(s.free, float64(u.Usage.FreeBytes), u.Volume, u.Service)
	}
}
