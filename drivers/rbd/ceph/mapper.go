package ceph

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rexray/rexray/mount"
)

// mapper attaches with `rbd device map`: the kernel's rbd client (krbd,
// /dev/rbdN) or rbd-nbd (/dev/nbdN). --exclusive keeps the image's lock
// with this host instead of handing it over to another client that asks.
type Mapper struct {
	Kind  string // krbd or nbd
	Tools Tools
	// Sys and Proc are where sysfs and procfs are mounted, /sys and
	// /proc if empty: mappings are read there rather than from `rbd
	// device list`.
	Sys, Proc string

	sizesMu sync.Mutex
	sizes   map[[2]string]int64 // device sizes Grown last saw, by pool/image
}

func (m *Mapper) Method() string { return m.Kind }

type mapped struct {
	Pool   string `json:"pool"`
	Name   string `json:"name"`
	Device string `json:"device"`
}

// list is what is mapped, read from sysfs (and for rbd-nbd /proc): a
// look-up is then a few reads instead of a process that loads librbd,
// which the lock check does every RBD_LOCKCHECK and every Inspect and
// Attach does once (about 2 s per run in an emulated VM). An nbd device
// whose rbd-nbd cannot be read that way is left to `rbd device list`.
func (m *Mapper) list(ctx context.Context) ([]mapped, error) {
	if m.Kind == "krbd" {
		return m.sysList()
	}
	if list, ok := m.nbdList(); ok {
		return list, nil
	}
	var list []mapped
	err := m.Tools.RunJSON(ctx, &list, "rbd", "device", "list", "-t", m.Kind)
	return list, err
}

// nbdList reads rbd-nbd's mappings as `rbd device list` does: each
// connected /sys/block/nbdN names the pid serving it, and that rbd-nbd's
// command line the image ("rbd-nbd [OPTION...] map POOL/IMAGE [OPTION...]").
// ok is false when a device's server is not such a command line.
func (m *Mapper) nbdList() (list []mapped, ok bool) {
	sys, proc := m.Sys, m.Proc
	if sys == "" {
		sys = "/sys"
	}
	if proc == "" {
		proc = "/proc"
	}
	devs, err := filepath.Glob(filepath.Join(sys, "block", "nbd*"))
	if err != nil {
		return nil, false
	}
	for _, dev := range devs {
		pid, err := os.ReadFile(filepath.Join(dev, "pid"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // not connected
		}
		if err != nil {
			return nil, false
		}
		cmdline, err := os.ReadFile(filepath.Join(proc, strings.TrimSpace(string(pid)), "cmdline"))
		if err != nil {
			return nil, false
		}
		pool, image, other, ok := nbdImage(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"))
		if !ok {
			return nil, false
		}
		if !other {
			list = append(list, mapped{Pool: pool, Name: image, Device: "/dev/" + filepath.Base(dev)})
		}
	}
	return list, true
}

// nbdImage is the image an rbd-nbd command line maps: the first argument
// after "map" or "attach" that is not an option, POOL/IMAGE, or
// other for what rexray never maps (POOL/NAMESPACE/IMAGE, IMAGE@SNAP).
func nbdImage(args []string) (pool, image string, other, ok bool) {
	if len(args) < 3 || filepath.Base(args[0]) != "rbd-nbd" {
		return "", "", false, false
	}
	i := slices.IndexFunc(args, func(a string) bool { return a == "map" || a == "attach" })
	if i < 0 {
		return "", "", false, false
	}
	for _, a := range args[i+1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		parts := strings.Split(a, "/")
		if len(parts) < 2 || len(parts) > 3 {
			return "", "", false, false
		}
		last := parts[len(parts)-1]
		return parts[0], last, len(parts) == 3 || strings.Contains(last, "@"), true
	}
	return "", "", false, false
}

func (m *Mapper) Attach(ctx context.Context, pool, image string) (string, error) {
	if dev, err := m.Device(ctx, pool, image); err != nil || dev != "" {
		return dev, err
	}
	out, err := m.Tools.Run(ctx, "rbd", append([]string{"device", "map", "-t", m.Kind, "--exclusive"}, append(m.noUdev(), pool+"/"+image)...)...)
	if err != nil {
		return "", err
	}
	dev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dev, "/dev/") {
		return "", fmt.Errorf("rbd device map %s: unexpected output %q", pool+"/"+image, out)
	}
	m.noteSize(pool, image, dev)
	return dev, nil
}

// noteSize records dev's size for Grown, which then tells of a growth
// from this size on.
func (m *Mapper) noteSize(pool, image, dev string) {
	size, err := mount.DeviceSize(dev)
	if err != nil {
		return
	}
	m.sizesMu.Lock()
	defer m.sizesMu.Unlock()
	if m.sizes == nil {
		m.sizes = make(map[[2]string]int64)
	}
	m.sizes[[2]string{pool, image}] = size
}

func (m *Mapper) Device(ctx context.Context, pool, image string) (string, error) {
	list, err := m.list(ctx)
	if err != nil {
		return "", err
	}
	for _, e := range list {
		if e.Pool == pool && e.Name == image {
			return e.Device, nil
		}
	}
	return "", nil
}

func (m *Mapper) Detach(ctx context.Context, pool, image string) error {
	dev, err := m.Device(ctx, pool, image)
	if err != nil || dev == "" {
		return err
	}
	_, err = m.Tools.Run(ctx, "rbd", append([]string{"device", "unmap", "-t", m.Kind}, append(m.noUdev(), dev)...)...)
	return err
}

// noUdev: krbd's map and unmap otherwise wait for udev's event, forever
// where no udevd sees it (a VM without one, a namespace it does not
// serve); devtmpfs makes the /dev node either way. rbd-nbd does not wait
// and refuses the option.
func (m *Mapper) noUdev() []string {
	if m.Kind == "krbd" {
		return []string{"-o", "noudev"}
	}
	return nil
}

// fence unmaps with -o force: pending I/O fails instead of waiting on a
// cluster that blocklisted this client.
func (m *Mapper) Fence(ctx context.Context, pool, image string) error {
	dev, err := m.Device(ctx, pool, image)
	if err != nil || dev == "" {
		return err
	}
	opts := "force"
	if m.Kind == "krbd" {
		opts += ",noudev"
	}
	_, err = m.Tools.Run(ctx, "rbd", "device", "unmap", "-t", m.Kind, "-o", opts, dev)
	return err
}

func (m *Mapper) Attached() ([][2]string, error) {
	list, err := m.list(context.Background())
	if err != nil {
		return nil, err
	}
	imgs := make([][2]string, len(list))
	for i, e := range list {
		imgs[i] = [2]string{e.Pool, e.Name}
	}
	return imgs, nil
}

// Grown lists the images mapped here whose devices are larger than when
// it last looked: krbd and rbd-nbd follow their image's header, so a
// resize on another host shows here by itself. An image mapped before
// this process started is only noted the first time.
func (m *Mapper) Grown(ctx context.Context) ([][2]string, error) {
	list, err := m.list(ctx)
	if err != nil {
		return nil, err
	}
	m.sizesMu.Lock()
	defer m.sizesMu.Unlock()
	seen := make(map[[2]string]int64, len(list))
	var grown [][2]string
	for _, e := range list {
		pi := [2]string{e.Pool, e.Name}
		size, err := mount.DeviceSize(e.Device)
		if err != nil {
			continue // unmapped meanwhile
		}
		if last, ok := m.sizes[pi]; ok && size > last {
			grown = append(grown, pi)
		}
		seen[pi] = size
	}
	m.sizes = seen
	return grown, nil
}

// sysList lists krbd's mappings of images (not of snapshots) from
// /sys/bus/rbd/devices/ID/{pool,name,current_snap}: device ID maps as
// /dev/rbdID. No rbd module, no mappings.
func (m *Mapper) sysList() ([]mapped, error) {
	sys := m.Sys
	if sys == "" {
		sys = "/sys"
	}
	dir := filepath.Join(sys, "bus", "rbd", "devices")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list krbd's devices: %w", err)
	}
	var list []mapped
	for _, e := range ents {
		attr := func(name string) (string, error) {
			b, err := os.ReadFile(filepath.Join(dir, e.Name(), name))
			return strings.TrimSpace(string(b)), err
		}
		pool, err1 := attr("pool")
		image, err2 := attr("name")
		snap, err3 := attr("current_snap")
		if err := errors.Join(err1, err2, err3); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // unmapped meanwhile
			}
			return nil, fmt.Errorf("list krbd's devices: %w", err)
		}
		if snap == "-" {
			list = append(list, mapped{Pool: pool, Name: image, Device: "/dev/rbd" + e.Name()})
		}
	}
	return list, nil
}
