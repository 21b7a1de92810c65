package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rexray/rexray/api/client"
)

// peer is section 6: rexray against another volume plugin in host mode
// (PEER_SOCKET), each operation on one and then the other, pair by pair,
// which goes first alternating, so that drift on a shared machine falls on
// both. The peer's volumes are made with PEER_CREATE_OPTS and rexray's with
// the same size, filesystem and ownership (sameVolume). A peer that fails
// a call has the failure in the table, in its row.
func (b *bench) peer() error {
	sock := os.Getenv("PEER_SOCKET")
	if sock == "" {
		fmt.Fprintln(os.Stderr, "bench: section 6 not run: PEER_SOCKET is not set")
		return nil
	}
	opts, err := parseOpts(os.Getenv("PEER_CREATE_OPTS"))
	if err != nil {
		return fmt.Errorf("PEER_CREATE_OPTS: %w", err)
	}
	name := peerName(sock)
	p := &pluginProc{sock: sock, cli: client.New(sock)}
	if err := activate(b.ctx, sock); err != nil {
		b.rep.failed("6 peer", "peer "+name+" at "+sock, err.Error())
		return nil
	}
	rx, err := startPlugin(b.ctx, b.binary, b.scratch("peer"))
	if err != nil {
		return err
	}
	defer rx.stop()
	pair := []*target{
		{name: "rexray", p: rx, opts: sameVolume(opts)},
		{name: name, p: p, opts: opts, peer: true},
	}
	if err := b.peerSocket(pair); err != nil {
		return err
	}
	if filepath.Dir(sock) != "/run/docker/plugins" {
		fmt.Fprintf(os.Stderr, "bench: section 6's docker commands not run: dockerd finds a plugin in host mode only by its socket in /run/docker/plugins, and PEER_SOCKET is %s\n", sock)
		return nil
	}
	return b.peerDocker(name, opts)
}

// target is one side of a pair.
type target struct {
	name string
	p    *pluginProc
	opts map[string]string
	peer bool
}

// outcome is one timed call: its duration, or why it failed.
type outcome struct {
	ms  float64
	err error
}

// series is one operation's outcomes on both sides, round by round: index
// 0 rexray, 1 the peer.
type series [2][]outcome

// peerStep is one call of a round on one volume.
type peerStep struct {
	figure string // "" for a call made but not reported
	method string
	req    func(vol string, opts map[string]string) vreq
}

var peerSteps = []peerStep{
	{"Create", "Create", func(v string, o map[string]string) vreq { return vreq{Name: v, Opts: o} }},
	{"first Mount", "Mount", func(v string, _ map[string]string) vreq { return vreq{Name: v, ID: "a"} }},
	{"Unmount after first Mount", "Unmount", func(v string, _ map[string]string) vreq { return vreq{Name: v, ID: "a"} }},
	{"re-Mount", "Mount", func(v string, _ map[string]string) vreq { return vreq{Name: v, ID: "b"} }},
	{"Get", "Get", func(v string, _ map[string]string) vreq { return vreq{Name: v} }},
	{"Path", "Path", func(v string, _ map[string]string) vreq { return vreq{Name: v} }},
	{"Unmount after re-Mount", "Unmount", func(v string, _ map[string]string) vreq { return vreq{Name: v, ID: "b"} }},
	{"Remove", "Remove", func(v string, _ map[string]string) vreq { return vreq{Name: v} }},
}

// peerSocket runs peerSteps round by round on both plugins, step by step
// alternately. A side whose call fails skips the rest of its round (its
// volume is cleaned up as far as it goes), and its later rounds go on.
func (b *bench) peerSocket(pair []*target) error {
	res := make([]series, len(peerSteps))
	for i := range b.runs {
		vol := fmt.Sprintf("bench-peer-%d-%d", os.Getpid(), i)
		var broken [2]error
		var brokeAt [2]string
		for j, st := range peerSteps {
			for k := range 2 {
				side := (i + j + k) % 2 // which goes first alternates
				t := pair[side]
				if broken[side] != nil {
					res[j][side] = append(res[j][side], outcome{err: skipped(brokeAt[side])})
					continue
				}
				d, err := t.p.timed(b.ctx, st.method, st.req(vol, t.opts))
				if err != nil && !t.peer {
					return fmt.Errorf("rexray: %w", err)
				}
				if err != nil {
					broken[side], brokeAt[side] = err, st.figure
					cleanUp(b, t, vol)
				}
				res[j][side] = append(res[j][side], outcome{ms: ms(d), err: err})
			}
		}
	}
	sec, peer := "6 peer", "peer "+pair[1].name
	for j, st := range peerSteps {
		f := b.rep.outcomes(sec, st.figure, peer, res[j])
		if st.figure == "Unmount after first Mount" && f != nil {
			f.Target = "< 0.9x"
		}
	}
	// The fair figure for a first use: one plugin may format at Create,
	// the other at the first Mount.
	b.rep.outcomes(sec, "Create + first Mount", peer, sumSeries(res[0], res[1])).Note = "the fair first-use figure: plugins format at Create or at the first Mount"
	return b.peerList(pair)
}

// peerListVolumes is how many volumes each plugin lists in section 6.
const peerListVolumes = 100

// peerList times List with peerListVolumes volumes on each plugin.
func (b *bench) peerList(pair []*target) error {
	var made [2][]string
	defer func() {
		for side, t := range pair {
			for _, v := range made[side] {
				t.p.call(b.ctx, "Remove", vreq{Name: v})
			}
		}
	}()
	var res series
	var broken [2]error
	for i := range peerListVolumes {
		for side, t := range pair {
			if broken[side] != nil {
				continue
			}
			v := fmt.Sprintf("bench-list-%d-%03d", os.Getpid(), i)
			if _, err := t.p.call(b.ctx, "Create", vreq{Name: v, Opts: t.opts}); err != nil {
				if !t.peer {
					return fmt.Errorf("rexray: %w", err)
				}
				broken[side] = fmt.Errorf("making volume %d of %d to list: %w", i+1, peerListVolumes, err)
				continue
			}
			made[side] = append(made[side], v)
		}
	}
	for i := range b.runs * 2 {
		for k := range 2 {
			side := (i + k) % 2
			if broken[side] != nil {
				res[side] = append(res[side], outcome{err: broken[side]})
				continue
			}
			d, err := pair[side].p.timed(b.ctx, "List", vreq{})
			if err != nil && !pair[side].peer {
				return fmt.Errorf("rexray: %w", err)
			}
			res[side] = append(res[side], outcome{ms: ms(d), err: err})
		}
	}
	b.rep.outcomes("6 peer", fmt.Sprintf("List, %d volumes", peerListVolumes), "peer "+pair[1].name, res)
	return nil
}

// errSkipped marks a call not made because an earlier one of its round
// failed.
var errSkipped = errors.New("not run")

func skipped(failed string) error {
	return fmt.Errorf("%w: %s failed earlier in its round", errSkipped, failed)
}

// cleanUp undoes what a broken round left on a plugin, as far as it can.
func cleanUp(b *bench, t *target, vol string) {
	for _, id := range []string{"a", "b"} {
		t.p.call(b.ctx, "Unmount", vreq{Name: vol, ID: id})
	}
	t.p.call(b.ctx, "Remove", vreq{Name: vol})
}

// sumSeries adds two operations' outcomes round by round; a round failed
// if either failed.
func sumSeries(a, b series) series {
	var out series
	for side := range 2 {
		for i := range a[side] {
			o := outcome{ms: a[side][i].ms + b[side][i].ms}
			if o.err = a[side][i].err; o.err == nil {
				o.err = b[side][i].err
			}
			out[side] = append(out[side], o)
		}
	}
	return out
}

// outcomes reports one operation of both sides: rexray's figure with the
// other's (baseline: "local", "peer NAME") as its baseline over the rounds
// where both succeeded, and a row saying what failed when the other
// failed any. It returns rexray's figure,
// or nil when no round succeeded on both.
func (r *report) outcomes(section, op, baseline string, s series) *figure {
	var xs, base []float64
	var firstErr error
	fails := 0
	for i := range s[0] {
		if err := s[1][i].err; err != nil {
			fails++
			if firstErr == nil || errors.Is(firstErr, errSkipped) {
				firstErr = err
			}
			continue
		}
		if s[0][i].err != nil {
			continue
		}
		xs, base = append(xs, s[0][i].ms), append(base, s[1][i].ms)
	}
	if fails > 0 {
		r.failed(section, op+", "+baseline, fmt.Sprintf("%d of %d failed: %v", fails, len(s[1]), firstErr))
	}
	if len(xs) == 0 {
		return &figure{} // nothing to compare; the failure row says why
	}
	return r.pair(section, op+", rexray", op+", "+baseline, "ms", xs, base)
}

// failed records a figure that could not be measured, and why.
func (r *report) failed(section, name, why string) *figure {
	f := &figure{Section: section, Name: name, Failed: why}
	r.Figures = append(r.Figures, f)
	return f
}

// parseOpts reads create options given as key=value pairs separated by
// commas, as in PEER_CREATE_OPTS=size=1GiB,sparse=true,fs=ext4.
func parseOpts(s string) (map[string]string, error) {
	opts := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return opts, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok || k == "":
			return nil, fmt.Errorf("%q is not key=value: give options as key=value pairs separated by commas, e.g. size=1GiB,sparse=true,fs=ext4", kv)
		case has(opts, k):
			return nil, fmt.Errorf("%q is given twice", k)
		}
		opts[k] = strings.TrimSpace(v)
	}
	return opts, nil
}

func has(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// sameVolume is rexray's create options for the volume the peer's options
// describe: its size, filesystem and ownership. Other options (sparse)
// have no counterpart: rexray's images are always sparse. Without a size
// or a filesystem rexray gets 1 GiB of ext4, the default of
// ashald/docker-volume-loopback.
func sameVolume(peer map[string]string) map[string]string {
	out := map[string]string{"size": "1GiB", "newfstype": "ext4"}
	for k, v := range peer {
		switch strings.ToLower(k) {
		case "size":
			out["size"] = v
		case "fs", "fstype", "newfstype":
			out["newfstype"] = v
		case "uid", "gid", "mode":
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

// peerName is the peer's name as dockerd knows a plugin in host mode: its
// socket's name without .sock.
func peerName(sock string) string {
	if n := strings.TrimSuffix(filepath.Base(sock), ".sock"); n != "" {
		return n
	}
	return sock
}
