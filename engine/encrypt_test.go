package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
	"github.com/rexray/rexray/engine/keys"
	"github.com/rexray/rexray/mount/luks"
)

// fakeCrypt is dm-crypt in memory: a LUKS header per volume (memdriver's
// devices end in the volume's name) holding the key it was made with.
type fakeCrypt struct {
	mu      sync.Mutex
	missing error             // Available's answer
	headers map[string][]byte // volume → key of its header
	plain   map[string]string // volume → a plain filesystem on its device
	open    map[string]luks.Mapping
	formats int
}

func newFakeCrypt() *fakeCrypt {
	return &fakeCrypt{headers: map[string][]byte{}, plain: map[string]string{}, open: map[string]luks.Mapping{}}
}

func (f *fakeCrypt) Available() error { return f.missing }

func (f *fakeCrypt) Signature(ctx context.Context, dev string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fs := f.plain[path.Base(dev)]; fs != "" {
		return fs, nil
	}
	if _, ok := f.headers[path.Base(dev)]; ok {
		return luks.Signature, nil
	}
	return "", nil
}

func (f *fakeCrypt) Format(ctx context.Context, dev string, key []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers[path.Base(dev)] = bytes.Clone(key)
	f.formats++
	return nil
}

func (f *fakeCrypt) Open(ctx context.Context, dev, mapping string, key []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !bytes.Equal(f.headers[path.Base(dev)], key) {
		return "", fmt.Errorf("open %s: %w", dev, luks.ErrWrongKey)
	}
	m := luks.Mapping{Name: mapping, Device: "/dev/mapper/" + mapping, Backing: dev}
	f.open[mapping] = m
	return m.Device, nil
}

func (f *fakeCrypt) Close(ctx context.Context, mapping string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.open, mapping)
	return nil
}

func (f *fakeCrypt) Resize(ctx context.Context, mapping string, key []byte) error { return nil }

func (f *fakeCrypt) Find(mapping string) (luks.Mapping, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.open[mapping]
	return m, ok, nil
}

func (f *fakeCrypt) Names(prefix string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.open {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	return names, nil
}

func (f *fakeCrypt) opened() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.open)
}

// cryptHost is a host whose engine opens encrypted volumes with c, its
// keys in a folder of the test's.
func cryptHost(t *testing.T, c *fakeCrypt, set func(*config.Config)) (*host, keys.Dir) {
	dir := t.TempDir()
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), func(cfg *config.Config) {
		cfg.KeyDir = dir
		if set != nil {
			set(cfg)
		}
	})
	h.crypt, h.e.crypt = c, c
	return h, keys.Dir(dir)
}

func TestEncryptedCreateFailsAtOnceWithoutDMCrypt(t *testing.T) {
	c := newFakeCrypt()
	c.missing = fmt.Errorf("%w: it has no device-mapper", luks.ErrNoDMCrypt)
	h, kd := cryptHost(t, c, func(cfg *config.Config) { cfg.Ops.CreateDefaultEncrypted = true })
	ctx := context.Background()
	for _, opts := range []map[string]string{{"encrypted": "true"}, {}} {
		err := h.e.Create(ctx, "v", opts)
		if err == nil || !strings.Contains(err.Error(), "the kernel lacks dm-crypt") || !errors.Is(err, drivers.ErrInvalid) {
			t.Errorf("Create(%v) = %v, want an invalid request saying the kernel lacks dm-crypt", opts, err)
		}
	}
	if _, err := h.e.Mount(ctx, "v", docker("c1"), true); err == nil || !strings.Contains(err.Error(), "the kernel lacks dm-crypt") {
		t.Errorf("an implicit create with CREATE_DEFAULT_ENCRYPTED=true mounted: %v", err)
	}
	if _, err := h.drv.Inspect(ctx, "v"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("a refused encrypted create left a volume: %v", err)
	}
	if keys.Exists(kd.Path("v")) {
		t.Errorf("a refused encrypted create left a key at %s", kd.Path("v"))
	}
	// A plain volume is made as before.
	h.create("p", map[string]string{"encrypted": "false"})
}

func TestEncryptedVolumeOpensWithItsKeyAndNeverFormatsWithoutIt(t *testing.T) {
	c := newFakeCrypt()
	h, kd := cryptHost(t, c, nil)
	ctx := context.Background()
	h.create("v", map[string]string{"encrypted": "true", "size": "64MiB"})
	key, err := keys.Read(kd.Path("v"))
	if err != nil || len(key) != keys.Size {
		t.Fatalf("key after create: %d bytes, %v", len(key), err)
	}
	if st, err := os.Stat(kd.Path("v")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key mode: %v, %v", st.Mode(), err)
	}

	h.mount("v", docker("c1"))
	if dev := h.os.mounted["v"]; dev != "/dev/mapper/"+h.e.mapping("v") {
		t.Errorf("the filesystem was mounted from %q, not the mapping", dev)
	}
	st, err := h.e.Get(ctx, "v")
	if err != nil || st.Fields["encrypted"] != "true" {
		t.Errorf("Status fields.encrypted = %q, %v", st.Fields["encrypted"], err)
	}
	h.unmount("v", docker("c1"))
	if c.opened() != 0 || h.attached("v") {
		t.Errorf("after the last unmount: %d mappings open, attached %v", c.opened(), h.attached("v"))
	}
	h.mount("v", docker("c2"))
	h.unmount("v", docker("c2"))
	if c.formats != 1 || h.os.formats != 1 {
		t.Errorf("LUKS formats %d, mkfs %d: want one each, at the first mount", c.formats, h.os.formats)
	}

	// A wrong key, then none: refused, naming the volume and the key.
	if err := os.WriteFile(kd.Path("v"), bytes.Repeat([]byte{7}, keys.Size), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = h.e.Mount(ctx, "v", docker("c3"), false)
	if err == nil || !strings.Contains(err.Error(), "volume v") || !strings.Contains(err.Error(), kd.Path("v")) || !errors.Is(err, luks.ErrWrongKey) {
		t.Errorf("mount with a wrong key: %v", err)
	}
	os.Remove(kd.Path("v"))
	_, err = h.e.Mount(ctx, "v", docker("c3"), false)
	if err == nil || !strings.Contains(err.Error(), "volume v") || !strings.Contains(err.Error(), kd.Path("v")) || !errors.Is(err, keys.ErrMissing) {
		t.Errorf("mount without a key: %v", err)
	}
	if c.formats != 1 || h.os.formats != 1 || h.attached("v") || h.holds("v") != 0 || c.opened() != 0 {
		t.Errorf("failed mounts left: formats %d/%d, attached %v, holds %d, mappings %d", c.formats, h.os.formats, h.attached("v"), h.holds("v"), c.opened())
	}

	// Removing the volume removes its key, after the volume.
	os.WriteFile(kd.Path("v"), key, 0o600)
	if err := h.e.Remove(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if keys.Exists(kd.Path("v")) {
		t.Errorf("the key of a removed volume is left at %s", kd.Path("v"))
	}
}

func TestEncryptedVolumeOverAPlainFilesystemIsRefused(t *testing.T) {
	c := newFakeCrypt()
	h, _ := cryptHost(t, c, nil)
	h.create("v", map[string]string{"encrypted": "true"})
	h.drv.Create(context.Background(), "unused", drivers.CreateOptions{Size: 1 << 20})
	c.plain["v"] = "ext4"
	h.os.wrote("v") // not blank: the device holds the plain filesystem
	_, err := h.e.Mount(context.Background(), "v", docker("c1"), false)
	if err == nil || !strings.Contains(err.Error(), "volume v is encrypted, but its device") || !strings.Contains(err.Error(), "plain ext4") {
		t.Errorf("mount of an encrypted volume holding ext4: %v", err)
	}
	if c.formats != 0 || h.os.formats != 0 || h.attached("v") {
		t.Errorf("formats %d/%d, attached %v: want nothing formatted, detached", c.formats, h.os.formats, h.attached("v"))
	}
}

func TestCopiesAndSnapshotsOfEncryptedVolumesCarryTheKey(t *testing.T) {
	c := newFakeCrypt()
	h, kd := cryptHost(t, c, nil)
	ctx := context.Background()
	h.create("src", map[string]string{"encrypted": "true"})
	key, _ := keys.Read(kd.Path("src"))

	h.create("cp", map[string]string{"volumeName": "src"})
	if got, err := keys.Read(kd.Path("cp")); err != nil || !bytes.Equal(got, key) {
		t.Errorf("the copy's key: %v, the same as its source's: %v", err, bytes.Equal(got, key))
	}
	if v, _ := h.drv.Inspect(ctx, "cp"); !v.Encrypted {
		t.Error("a copy of an encrypted volume is not recorded encrypted")
	}
	if err := h.e.Create(ctx, "cp2", map[string]string{"volumeName": "src", "encrypted": "false"}); err == nil || !strings.Contains(err.Error(), "volume src is encrypted") {
		t.Errorf("a plain copy of an encrypted volume: %v", err)
	}
	if keys.Exists(kd.Path("cp2")) {
		t.Error("a refused copy left a key")
	}

	if _, err := h.e.CreateSnapshot(ctx, "src", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Remove(ctx, "src"); err != nil {
		t.Fatal(err)
	}
	h.create("restored", map[string]string{"snapshotName": "s1"})
	if got, err := keys.Read(kd.Path("restored")); err != nil || !bytes.Equal(got, key) {
		t.Errorf("a volume from the snapshot of a removed volume: key %v, same %v", err, bytes.Equal(got, key))
	}
	if err := h.e.RemoveSnapshot(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if keys.Exists(kd.SnapshotPath("s1")) {
		t.Error("a removed snapshot's key is left")
	}
}

func TestMappingsLeftOpenAreClosedAtStart(t *testing.T) {
	c := newFakeCrypt()
	h, _ := cryptHost(t, c, nil)
	h.create("v", map[string]string{"encrypted": "true"})
	h.mount("v", docker("c1"))
	// A container holds the filesystem on the mapping across the restart.
	h.os.busy["/dev/mapper/"+h.e.mapping("v")] = true
	// Another volume's mapping, left by a plugin that died between steps.
	c.open[h.e.mapping("gone")] = luks.Mapping{Name: h.e.mapping("gone")}
	h.start()
	if _, ok := c.open[h.e.mapping("gone")]; ok {
		t.Error("a mapping of a volume nothing holds is still open after a restart")
	}
	if _, ok := c.open[h.e.mapping("v")]; !ok {
		t.Error("the mapping of a volume still mounted was closed at start")
	}
	delete(h.os.busy, "/dev/mapper/"+h.e.mapping("v"))
	h.unmount("v", docker("c1"))
	if c.opened() != 0 {
		t.Errorf("%d mappings open after the last unmount", c.opened())
	}
}
