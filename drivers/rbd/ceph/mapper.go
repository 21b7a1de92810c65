package ceph

import (
	"context"
	"fmt"
	"strings"
)

// mapper attaches with `rbd device map`: the kernel's rbd client (krbd,
// /dev/rbdN) or rbd-nbd (/dev/nbdN). --exclusive keeps the image's lock
// with this host instead of handing it over to another client that asks.
type Mapper struct {
	Kind  string // krbd or nbd
	Tools Tools
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
	out, err := m.Tools.Run(ctx, "rbd", append([]string{"device", "map", "-t", m.Kind, "--exclusive"}, append(m.noUdev(), pool+"/"+image)...)...)
	if err != nil {
		return "", err
	}
	dev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dev, "/dev/") {
		return "", fmt.Errorf("rbd device map %s: unexpected output %q", pool+"/"+image, out)
	}
	return dev, nil
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
