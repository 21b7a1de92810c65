package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// dataPath is section 5: sequential write and read of 1 GiB inside a
// mounted volume against the same on the store's own filesystem, with the
// loop device's direct I/O on and off.
func (b *bench) dataPath() error {
	for _, dio := range []string{"true", "false"} {
		dir := b.scratch("io-" + dio)
		p, err := startPlugin(b.ctx, b.binary, dir, "LOOPBACK_DIRECTIO="+dio)
		if err != nil {
			return err
		}
		err = b.dataPathWith(p, dir, dio)
		p.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) dataPathWith(p *pluginProc, dir, dio string) error {
	if _, err := p.call(b.ctx, "Create", vreq{Name: "io", Opts: map[string]string{"size": "2"}}); err != nil {
		return err
	}
	res, err := p.call(b.ctx, "Mount", vreq{Name: "io", ID: "io"})
	if err != nil {
		return err
	}
	defer p.call(b.ctx, "Remove", vreq{Name: "io"})
	defer p.call(b.ctx, "Unmount", vreq{Name: "io", ID: "io"})
	inVol := filepath.Join(res.Mountpoint, "seq")
	onStore := filepath.Join(dir, "store", "seq")
	defer os.Remove(onStore)

	var w, r, bw, br []float64
	for range b.runs {
		for _, c := range []struct {
			path string
			w, r *[]float64
		}{{inVol, &w, &r}, {onStore, &bw, &br}} {
			wr, rd, err := seqIO(c.path, gib)
			if err != nil {
				return err
			}
			*c.w, *c.r = append(*c.w, wr), append(*c.r, rd)
		}
	}
	sec := "5 data"
	label := fmt.Sprintf(" (direct I/O %s)", dio)
	b.rep.pair(sec, "write 1 GiB in a volume"+label, "write 1 GiB on the store's fs"+label, "MB/s", w, bw).Target = ">= 0.9x"
	b.rep.pair(sec, "read 1 GiB in a volume"+label, "read 1 GiB on the store's fs"+label, "MB/s", r, br).Target = ">= 0.9x"
	return nil
}

// seqIO writes size bytes in 1 MiB blocks and fsyncs, drops the page
// cache, reads them back, and returns both rates in MB/s.
func seqIO(path string, size int64) (write, read float64, err error) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	// Start each write from a quiet machine: the last run's file gone and
	// its dirty pages written, so runs do not pay for each other.
	os.Remove(path)
	syscall.Sync()
	if err := dropCaches(); err != nil {
		return 0, 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return 0, 0, err
		}
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return 0, 0, err
	}
	write = float64(size) / 1e6 / time.Since(start).Seconds()
	if err := dropCaches(); err != nil {
		return 0, 0, err
	}
	f, err = os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	start = time.Now()
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
		return 0, 0, err
	}
	read = float64(size) / 1e6 / time.Since(start).Seconds()
	return write, read, nil
}

// dropCaches empties the page cache, so reads come from the device.
func dropCaches() error {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200)
}
