package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/mount"
)

const gib = 1 << 30

// bench holds what every section needs.
type bench struct {
	ctx    context.Context
	repo   string
	binary string
	dir    string // scratch folder, removed at the end
	runs   int
	// dockerRuns is section 3's count: a docker run's own noise is about
	// the size of what rexray adds, so its ratios need more pairs.
	dockerRuns int
	// startupVolumes and startupMounted are section 9's store: how many
	// volumes, and how many of them mounted.
	startupVolumes, startupMounted int
	// big is the store of many volumes sections 2 and 9 share, filled
	// once: 10,000 durable creates take minutes on a small disk.
	big struct {
		dir  string
		drv  *loopback.Driver
		have int
	}
	rep *report
}

// bigStore is the folder of a plugin (store and state) whose store holds
// at least n volumes, n%05d, filled through the driver (not timed).
func (b *bench) bigStore(n int) (string, error) {
	if b.big.drv == nil {
		dir := b.scratch("scale")
		drv, err := loopback.New(loopback.Config{VolumePath: filepath.Join(dir, "store"), Instance: "bench", Overcommit: true, Log: quiet()})
		if err != nil {
			return "", err
		}
		b.big.dir, b.big.drv = dir, drv
	}
	for ; b.big.have < n; b.big.have++ {
		if _, err := b.big.drv.Create(b.ctx, bigName(b.big.have), drivers.CreateOptions{Size: 64 << 20, FSType: "ext4"}); err != nil {
			return "", err
		}
	}
	return b.big.dir, nil
}

func bigName(i int) string { return fmt.Sprintf("n%05d", i) }

func (b *bench) scratch(name string) string {
	d := filepath.Join(b.dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		panic(err)
	}
	return d
}

// run execs a tool and fails with what it printed.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func timeRun(ctx context.Context, name string, args ...string) (time.Duration, error) {
	start := time.Now()
	_, err := run(ctx, name, args...)
	return time.Since(start), err
}

// socketOps is section 1: each Docker call at the plugin socket, against
// the same chain done with losetup, mkfs and mount, run alternately.
func (b *bench) socketOps(p *pluginProc) error {
	for _, fs := range []string{"ext4", "xfs"} {
		var s struct{ create, first, unmount, remount, get, path, remove, kFirst, kUnmount, kRemount []float64 }
		for i := range b.runs {
			name := fmt.Sprintf("s1-%s-%d", fs, i)
			steps := []struct {
				method string
				req    vreq
				into   *[]float64
			}{
				{"Create", vreq{Name: name, Opts: map[string]string{"size": "1", "newfstype": fs}}, &s.create},
				{"Mount", vreq{Name: name, ID: "a"}, &s.first},
				{"Unmount", vreq{Name: name, ID: "a"}, &s.unmount},
				{"Mount", vreq{Name: name, ID: "b"}, &s.remount},
				{"Get", vreq{Name: name}, &s.get},
				{"Path", vreq{Name: name}, &s.path},
				{"Unmount", vreq{Name: name, ID: "b"}, nil},
				{"Remove", vreq{Name: name}, &s.remove},
			}
			for _, st := range steps {
				d, err := p.timed(b.ctx, st.method, st.req)
				if err != nil {
					return err
				}
				if st.into != nil {
					*st.into = append(*st.into, ms(d))
				}
			}
			k, err := b.kernelChain(fs, i)
			if err != nil {
				return err
			}
			s.kFirst, s.kUnmount, s.kRemount = append(s.kFirst, k[0]), append(s.kUnmount, k[1]), append(s.kRemount, k[2])
		}
		sec := "1 socket"
		b.rep.add(sec, "Create 1 GiB "+fs, "ms", s.create)
		b.rep.pair(sec, "first Mount (attach+mkfs+mount) "+fs, "kernel: losetup+mkfs+mount "+fs, "ms", s.first, s.kFirst).Target = "<= 1.5x"
		b.rep.pair(sec, "re-Mount of a formatted volume "+fs, "kernel: losetup+mount "+fs, "ms", s.remount, s.kRemount).Target = "<= 15 ms"
		b.rep.pair(sec, "Unmount (umount+detach) "+fs, "kernel: umount+losetup -d "+fs, "ms", s.unmount, s.kUnmount).Target = "<= 10 ms"
		b.rep.add(sec, "Get "+fs, "ms", s.get)
		b.rep.add(sec, "Path "+fs, "ms", s.path)
		b.rep.add(sec, "Remove "+fs, "ms", s.remove)
	}
	return nil
}

// kernelChain does by hand what the plugin does: it returns the first
// mount (losetup+mkfs+mount), the unmount (umount+losetup -d) and the
// re-mount (losetup+mount), in ms.
func (b *bench) kernelChain(fs string, i int) ([3]float64, error) {
	var out [3]float64
	dir := b.scratch("kernel")
	img, mnt := filepath.Join(dir, fmt.Sprintf("k%d.img", i)), filepath.Join(dir, "mnt")
	os.MkdirAll(mnt, 0o755)
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return out, err
	}
	defer os.Remove(img)
	if err := os.Truncate(img, gib); err != nil {
		return out, err
	}
	attachMount := func(format bool) (string, time.Duration, error) {
		start := time.Now()
		dev, err := run(b.ctx, "losetup", "--find", "--show", "--direct-io=on", img)
		if err != nil {
			return "", 0, err
		}
		if format {
			// The very command the plugin runs on a new (sparse, so
			// zeroed) image, so the pair differs only by what the
			// plugin adds.
			mkfs, err := mount.MkfsCommand(fs, dev, true)
			if err == nil {
				_, err = run(b.ctx, mkfs[0], mkfs[1:]...)
			}
			if err != nil {
				return dev, 0, err
			}
		}
		_, err = run(b.ctx, "mount", "-t", fs, dev, mnt)
		return dev, time.Since(start), err
	}
	detach := func(dev string) (time.Duration, error) {
		start := time.Now()
		if _, err := run(b.ctx, "umount", mnt); err != nil {
			return 0, err
		}
		_, err := run(b.ctx, "losetup", "-d", dev)
		return time.Since(start), err
	}
	dev, d, err := attachMount(true)
	if err != nil {
		return out, err
	}
	out[0] = ms(d)
	if d, err = detach(dev); err != nil {
		return out, err
	}
	out[1] = ms(d)
	if dev, d, err = attachMount(false); err != nil {
		return out, err
	}
	out[2] = ms(d)
	_, err = detach(dev)
	return out, err
}

// scale is section 2: List and Get latency and RSS as the catalogue grows.
// The store is filled through the driver directly: this measures List and
// Get, not 10,000 Creates.
func (b *bench) scale() error {
	dir, err := b.bigStore(0)
	if err != nil {
		return err
	}
	p, err := startPlugin(b.ctx, b.binary, dir)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	idle, err := p.rss()
	p.stop()
	if err != nil {
		return err
	}
	b.rep.add("2 scale", "RSS idle, no volumes", "MB", []float64{idle}).Target = "<= 15 MB"

	for _, n := range []int{100, 1000, 10000} {
		if _, err := b.bigStore(n); err != nil {
			return err
		}
		if err := b.scaleAt(dir, n); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) scaleAt(dir string, n int) error {
	p, err := startPlugin(b.ctx, b.binary, dir)
	if err != nil {
		return err
	}
	defer p.stop()
	// List is the store's listing (its folder's names) merged with the
	// ledger; the catalogue answers only for a store that does not. The
	// plugin keeps a listing while the folder is unchanged, so both are
	// measured: right after a change in the folder (every List reads it
	// whole) and with the folder unchanged for a while.
	touch := filepath.Join(dir, "store", "volumes", "bench-touch")
	var changed, unchanged, get []float64
	for i := range 20 {
		if err := os.WriteFile(touch, nil, 0o600); err != nil {
			return err
		}
		os.Remove(touch)
		d, err := p.timed(b.ctx, "List", vreq{})
		if err != nil {
			return err
		}
		changed = append(changed, ms(d))
		for j := range 10 {
			d, err := p.timed(b.ctx, "Get", vreq{Name: bigName((i*7919 + j*104729) % n)})
			if err != nil {
				return err
			}
			get = append(get, ms(d))
		}
	}
	time.Sleep(1100 * time.Millisecond) // the plugin keeps a listing read a second after a change
	for range 20 {
		d, err := p.timed(b.ctx, "List", vreq{})
		if err != nil {
			return err
		}
		unchanged = append(unchanged, ms(d))
	}
	rss, err := p.rss()
	if err != nil {
		return err
	}
	f := b.rep.add("2 scale", fmt.Sprintf("List, %d volumes, store listing: folder changed", n), "ms", changed)
	if n == 10000 {
		f.Target = "<= 50 ms"
	}
	b.rep.add("2 scale", fmt.Sprintf("List, %d volumes, store listing: folder unchanged", n), "ms", unchanged)
	b.rep.add("2 scale", fmt.Sprintf("Get, %d volumes (asks the store)", n), "ms", get)
	r := b.rep.add("2 scale", fmt.Sprintf("RSS after List, %d volumes", n), "MB", []float64{rss})
	if n == 10000 {
		r.Target = "<= 40 MB"
	}
	return nil
}

// concurrency is section 4: 64 Mounts at once, of 64 volumes and of one.
func (b *bench) concurrency() error {
	const n = 64
	p, err := startPlugin(b.ctx, b.binary, b.scratch("conc"))
	if err != nil {
		return err
	}
	defer p.stop()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i)
		if _, err := p.call(b.ctx, "Create", vreq{Name: names[i], Opts: map[string]string{"size": "64MiB"}}); err != nil {
			return err
		}
	}
	storeDir := filepath.Join(p.dir, "store", "volumes")
	wall, errs := parallel(n, func(i int) error {
		_, err := p.call(b.ctx, "Mount", vreq{Name: names[i], ID: "x"})
		return err
	})
	b.rep.add("4 concur", "64 Mounts of 64 volumes: wall", "ms", []float64{ms(wall)})
	b.rep.add("4 concur", "64 Mounts of 64 volumes: errors", "count", []float64{float64(errs)})
	b.rep.add("4 concur", "64 Mounts of 64 volumes: attaches", "count", []float64{float64(countLoops(storeDir))})
	parallel(n, func(i int) error {
		_, err := p.call(b.ctx, "Unmount", vreq{Name: names[i], ID: "x"})
		return err
	})

	wall, errs = parallel(n, func(i int) error {
		_, err := p.call(b.ctx, "Mount", vreq{Name: names[0], ID: fmt.Sprint(i)})
		return err
	})
	b.rep.add("4 concur", "64 Mounts of one volume: wall", "ms", []float64{ms(wall)})
	b.rep.add("4 concur", "64 Mounts of one volume: errors", "count", []float64{float64(errs)})
	b.rep.add("4 concur", "64 Mounts of one volume: attaches", "count", []float64{float64(countLoops(storeDir))})
	parallel(n, func(i int) error {
		_, err := p.call(b.ctx, "Unmount", vreq{Name: names[0], ID: fmt.Sprint(i)})
		return err
	})
	return nil
}

func parallel(n int, f func(i int) error) (time.Duration, int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := 0
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(i); err != nil {
				mu.Lock()
				errs++
				mu.Unlock()
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}()
	}
	wg.Wait()
	return time.Since(start), errs
}

// countLoops counts loop devices backed by images in dir.
func countLoops(dir string) int {
	imgs, _ := filepath.Glob(filepath.Join(dir, "*.img"))
	n := 0
	for _, img := range imgs {
		out, _ := run(context.Background(), "losetup", "--noheadings", "--output", "NAME", "-j", img)
		n += len(strings.Fields(out))
	}
	return n
}

// quiet is a logger for the driver the bench fills stores through: its
// warnings (a store overcommitted by thousands of sparse volumes) are
// expected here.
func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
