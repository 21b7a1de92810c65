package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/rexray/rexray/mount"
)

// fakeOS is a fake of the OS side (package mount) for the engine's tests:
// it keeps what is mounted where, and what each device holds, in memory.
// A volume "formatted" here holds a filesystem for every later mount, on
// any host sharing the fake's filesystems (shared).
type fakeOS struct {
	mu      sync.Mutex
	mounted map[string]string // volume → device
	fs      map[string]string // volume → filesystem type made on it (devices differ by host)
	// busy are the devices a container still holds elsewhere.
	busy    map[string]bool
	formats int             // mkfs runs
	fenced  []string        // volumes fenced, in order
	grown   []string        // volumes whose filesystem grew, in order
	frozen  map[string]bool // volumes frozen now
	mountAs map[string]mount.Content
	// wrote is told of each volume a mkfs here writes to.
	wrote func(name string)
}

func newFakeOS() *fakeOS {
	return &fakeOS{mounted: map[string]string{}, fs: map[string]string{}, busy: map[string]bool{}, frozen: map[string]bool{}, mountAs: map[string]mount.Content{}}
}

// shared is another host's OS over the same volumes: what one formats,
// the other finds.
func (f *fakeOS) shared() *fakeOS {
	g := newFakeOS()
	g.fs = f.fs
	return g
}

func (f *fakeOS) Mount(ctx context.Context, device, name string, spec mount.Spec) (string, error) {
	fsType, content := spec.FSType, spec.Content
	f.mu.Lock()
	defer f.mu.Unlock()
	if dev, ok := f.mounted[name]; ok {
		return "", fmt.Errorf("fake: %s is mounted already from %s", name, dev)
	}
	have := f.fs[name]
	switch {
	case content == mount.Existing && have == "":
		return "", &mount.NoFilesystemError{Device: device}
	case content == mount.Discard, content == mount.Zeros, content == mount.Unknown && have == "":
		f.fs[name] = fsType
		f.formats++
		if f.wrote != nil {
			f.wrote(name)
		}
	}
	f.mounted[name] = device
	f.mountAs[name] = content
	return f.Path(name), nil
}

func (f *fakeOS) Unmount(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mounted, name)
	return nil
}

func (f *fakeOS) IsMounted(name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.mounted[name]
	return ok, nil
}

func (f *fakeOS) Mounted() (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]string, len(f.mounted))
	for k, v := range f.mounted {
		m[k] = v
	}
	return m, nil
}

func (f *fakeOS) Freeze(name string) (func() error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen[name] = true
	return func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.frozen, name)
		return nil
	}, nil
}

func (f *fakeOS) Fence(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fenced = append(f.fenced, name)
	delete(f.mounted, name)
	return nil
}

func (f *fakeOS) Busy(device string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, dev := range f.mounted {
		if dev == device {
			return true, nil
		}
	}
	return f.busy[device], nil
}

func (f *fakeOS) Path(name string) string { return "/fake/mnt/" + name + "/data" }

func (f *fakeOS) fencedNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fenced)
}

// Usage is a fixed fill of a mounted volume: 1 GiB, 1 MiB of it used.
func (f *fakeOS) Usage(name string) (mount.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.mounted[name]; !ok {
		return mount.Usage{}, fmt.Errorf("fake: %s is not mounted", name)
	}
	return mount.Usage{Bytes: 1 << 30, UsedBytes: 1 << 20, FreeBytes: 1<<30 - 1<<20}, nil
}

// Grow counts the filesystems grown.
func (f *fakeOS) Grow(ctx context.Context, device, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.mounted[name]; !ok {
		return fmt.Errorf("fake: %s is not mounted", name)
	}
	f.grown = append(f.grown, name)
	return nil
}
