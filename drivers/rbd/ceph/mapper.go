package ceph

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/rexray/rexray/mount"
)

// mapper attaches with `rbd device map`: the kernel's rbd client (krbd,
// /dev/rbdN) or rbd-nbd (/dev/nbdN). Untested here: this machine's kernel
// has neither module. --exclusive keeps the image's lock with this host
// instead of handing it over to another client that asks.
type Mapper struct {
	Kind  string // krbd or nbd
	Tools Tools

	sizesMu sync.Mutex
	sizes   map[[2]string]int64 // device sizes Grown last saw, by pool/image
}

func (m *Mapper) Method() string { return m.Kind }

type mapped struct {
	Pool   string `json:"pool"`
	Name   string `json:"name"`
	Device string `json:"device"`
}

func (m *Mapper) list(ctx context.Context) ([]mapped, error) {
	var list []mapped
	err := m.Tools.RunJSON(ctx, &list, "rbd", "device", "list", "-t", m.Kind)
	return list, err
}

func (m *Mapper) Attach(ctx context.Context, pool, image string) (string, error) {
	if dev, err := m.Device(ctx, pool, image); err != nil || dev != "" {
		return dev, err
	}
	out, err := m.Tools.Run(ctx, "rbd", "device", "map", "-t", m.Kind, "--exclusive", pool+"/"+image)
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
	_, err = m.Tools.Run(ctx, "rbd", "device", "unmap", "-t", m.Kind, dev)
	return err
}

// fence unmaps with -o force: pending I/O fails instead of waiting on a
// cluster that blocklisted this client.
func (m *Mapper) Fence(ctx context.Context, pool, image string) error {
	dev, err := m.Device(ctx, pool, image)
	if err != nil || dev == "" {
		return err
	}
	_, err = m.Tools.Run(ctx, "rbd", "device", "unmap", "-t", m.Kind, "-o", "force", dev)
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
