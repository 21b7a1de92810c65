package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
)

// metricsVolumes is how many volumes each plugin of section 8 lists.
const metricsVolumes = 20

// metricsOverhead is section 8: Mount of a formatted volume and List, at
// the socket of a plugin serving /metrics (REXRAY_METRICS_ADDR, scraped
// between rounds as Prometheus would) against a plugin without it, the
// two called alternately in one run.
func (b *bench) metricsOverhead() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	on, err := startPlugin(b.ctx, b.binary, b.scratch("metrics-on"), "REXRAY_METRICS_ADDR="+addr)
	if err != nil {
		return err
	}
	defer on.stop()
	off, err := startPlugin(b.ctx, b.binary, b.scratch("metrics-off"))
	if err != nil {
		return err
	}
	defer off.stop()
	for _, p := range []*pluginProc{on, off} {
		if err := metricsVolumesOn(b, p); err != nil {
			return err
		}
	}
	var mountOn, mountOff, listOn, listOff []float64
	for i := range b.runs * 2 {
		pair := []*pluginProc{on, off}
		if i%2 == 1 {
			pair = []*pluginProc{off, on}
		}
		for _, p := range pair {
			m, l, err := metricsRound(b, p)
			if err != nil {
				return err
			}
			if p == on {
				mountOn, listOn = append(mountOn, m), append(listOn, l)
			} else {
				mountOff, listOff = append(mountOff, m), append(listOff, l)
			}
		}
		if err := scrape(addr); err != nil {
			return err
		}
	}
	sec := "8 metrics"
	b.rep.pair(sec, "re-Mount of a formatted volume, metrics on", "re-Mount, metrics off", "ms", mountOn, mountOff).Target = "<= 1.05x"
	b.rep.pair(sec, fmt.Sprintf("List of %d volumes, metrics on", metricsVolumes), "List, metrics off", "ms", listOn, listOff).Target = "<= 1.05x"
	return nil
}

// metricsVolumesOn creates section 8's volumes on p and formats the first.
func metricsVolumesOn(b *bench, p *pluginProc) error {
	for i := range metricsVolumes {
		if _, err := p.call(b.ctx, "Create", vreq{Name: fmt.Sprintf("m8-%d", i), Opts: map[string]string{"size": "64MiB"}}); err != nil {
			return err
		}
	}
	if _, err := p.call(b.ctx, "Mount", vreq{Name: "m8-0", ID: "f"}); err != nil {
		return err
	}
	_, err := p.call(b.ctx, "Unmount", vreq{Name: "m8-0", ID: "f"})
	return err
}

// metricsRound times one Mount (then unmounts it) and one List on p, in ms.
func metricsRound(b *bench, p *pluginProc) (mount, list float64, err error) {
	d, err := p.timed(b.ctx, "Mount", vreq{Name: "m8-0", ID: "r"})
	if err != nil {
		return 0, 0, err
	}
	if _, err := p.call(b.ctx, "Unmount", vreq{Name: "m8-0", ID: "r"}); err != nil {
		return 0, 0, err
	}
	l, err := p.timed(b.ctx, "List", vreq{})
	return ms(d), ms(l), err
}

// scrape reads /metrics once, as a scraper would.
func scrape(addr string) error {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// freeAddr is a loopback address no one listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
