package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/keys"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/mount/luks"
)

// An encrypted volume's blocks are LUKS2. Between its driver's device and
// its filesystem sits a dm-crypt mapping, opened with the volume's key
// (package keys) on the host that mounts it, and closed before the
// device is detached: in release, in a failed mount, in a fence. The
// mapping's name is this instance's (mapping), so that a mapping left
// open by a plugin that died is found at start and reused or closed.

// Crypt is the OS side of encrypted volumes: package luks, or a fake.
type Crypt interface {
	// Available fails, at once, on a host that cannot open them.
	Available() error
	// Signature is the type of what dev holds, as blkid names it
	// ("crypto_LUKS", "ext4"), or "" for nothing it recognises.
	Signature(ctx context.Context, dev string) (string, error)
	Format(ctx context.Context, dev string, key []byte) error
	Open(ctx context.Context, dev, mapping string, key []byte) (string, error)
	Close(ctx context.Context, mapping string) error
	Resize(ctx context.Context, mapping string, key []byte) error
	Find(mapping string) (luks.Mapping, bool, error)
	Names(prefix string) ([]string, error)
}

// hostCrypt is Crypt on this host.
type hostCrypt struct{ luks.Host }

func (hostCrypt) Signature(ctx context.Context, dev string) (string, error) {
	return mount.Probe(ctx, dev)
}
func (hostCrypt) Format(ctx context.Context, dev string, key []byte) error {
	return luks.Format(ctx, dev, key)
}
func (hostCrypt) Open(ctx context.Context, dev, mapping string, key []byte) (string, error) {
	return luks.Open(ctx, dev, mapping, key)
}
func (hostCrypt) Close(ctx context.Context, mapping string) error { return luks.Close(ctx, mapping) }
func (hostCrypt) Resize(ctx context.Context, mapping string, key []byte) error {
	return luks.Resize(ctx, mapping, key)
}
func (hostCrypt) Find(mapping string) (luks.Mapping, bool, error) { return luks.Find(mapping) }
func (hostCrypt) Names(prefix string) ([]string, error)           { return luks.Names(prefix) }

// mappingPrefix begins the names of this instance's mappings: two
// instances on one host (a preempt in a test, two services' plugins)
// never share one.
func (e *Engine) mappingPrefix() string {
	sum := sha256.Sum256([]byte(e.instance))
	return "rexray-" + hex.EncodeToString(sum[:6]) + "-"
}

// mapping names the dm-crypt mapping of a volume on this instance, within
// the device-mapper's 127 bytes.
func (e *Engine) mapping(volume string) string {
	if len(volume) > 96 {
		sum := sha256.Sum256([]byte(volume))
		volume = volume[:80] + "-" + hex.EncodeToString(sum[:6])
	}
	return e.mappingPrefix() + volume
}

// canEncrypt refuses, before anything is made, an encrypted volume this
// host could never open.
func (e *Engine) canEncrypt(name string) error {
	if err := e.crypt.Available(); err != nil {
		return drivers.Invalid("create volume %s: encrypted=true: %v; nothing was created", name, err)
	}
	return nil
}

// newKey gives the encrypted volume name its key before its blocks are
// made: a copy of the key at from (a copy's source's), or a new one unless
// one is there already. undo removes a key it made.
func (e *Engine) newKey(ctx context.Context, name, from string) (undo func(), err error) {
	path := e.keys.Path(name)
	var made bool
	if from != "" {
		made, err = keys.Copy(from, path)
	} else {
		made, err = keys.Make(path)
	}
	if errors.Is(err, keys.ErrMissing) {
		return nil, fmt.Errorf("create volume %s: it copies encrypted blocks whose key is missing (%s): without it neither source nor copy can be read: %w", name, from, err)
	}
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	if !made {
		e.logFor(ctx, name).Infof("encrypted with the key already at %s", path)
		return func() {}, nil
	}
	return func() { keys.Remove(path) }, nil
}

// keepEncryption gives a copy its source's encryption: its blocks are
// the source's, LUKS or not. Asking for the other is refused.
func keepEncryption(name string, gave, asked *bool, src bool, what string) error {
	if *gave && *asked != src {
		state := "is not encrypted"
		if src {
			state = "is encrypted"
		}
		return drivers.Invalid("create volume %s: %s %s, and a copy carries its blocks as they are: drop encrypted=%t", name, what, state, *asked)
	}
	*asked = src
	return nil
}

// canUnlock refuses an encrypted volume this host cannot open, before it
// is attached: attaching with preempt would take it from its holder for
// nothing. A wrong key only shows on the device, in unlock.
func (e *Engine) canUnlock(v drivers.Volume) error {
	if !v.Encrypted {
		return nil
	}
	if err := e.crypt.Available(); err != nil {
		return fmt.Errorf("volume %s is encrypted, and %w", v.Name, err)
	}
	path := e.keys.Path(v.Name)
	if _, err := keys.Read(path); err != nil {
		return keyError(v.Name, path, err)
	}
	return nil
}

// unlock is the device v's filesystem lives on, once dev is attached: dev
// itself for a plain volume; for an encrypted one, its LUKS2 volume
// opened with its key, or reused when this instance opened it already.
// A device that holds nothing at all is given its LUKS2 header first
// (fresh: the mapped device holds nothing either); one that holds
// anything else is refused, and nothing is ever formatted over it.
func (e *Engine) unlock(ctx context.Context, drv drivers.Driver, v drivers.Volume, dev string) (fsDev string, fresh bool, err error) {
	if !v.Encrypted {
		return dev, false, nil
	}
	if err := e.crypt.Available(); err != nil {
		return "", false, fmt.Errorf("volume %s is encrypted, and %w", v.Name, err)
	}
	name := e.mapping(v.Name)
	m, open, err := e.crypt.Find(name)
	if err != nil {
		return "", false, err
	}
	if open && sameDevice(m.Backing, dev) {
		return m.Device, false, nil
	}
	if open {
		// Left over a device the volume no longer has here.
		if err := e.crypt.Close(ctx, name); err != nil {
			return "", false, err
		}
	}
	path := e.keys.Path(v.Name)
	key, err := keys.Read(path)
	if err != nil {
		return "", false, keyError(v.Name, path, err)
	}
	sig := ""
	if !e.blank(ctx, drv, v.Name) {
		if sig, err = e.crypt.Signature(ctx, dev); err != nil {
			return "", false, err
		}
	}
	switch {
	case sig == luks.Signature:
	case sig == "" && v.Formatted.IsZero():
		if err := e.crypt.Format(ctx, dev, key); err != nil {
			return "", false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		e.logFor(ctx, v.Name).Infof("LUKS2 header made on %s with the key %s", dev, path)
		fresh = true
	case sig == "":
		return "", false, fmt.Errorf("volume %s is encrypted and was formatted (%s), but its device %s holds no LUKS header: it is damaged, and it is neither opened nor formatted again", v.Name, v.Formatted.UTC().Format(time.RFC3339), dev)
	default:
		return "", false, fmt.Errorf("volume %s is encrypted, but its device %s holds a plain %s, not a LUKS header: it is neither opened nor formatted. Its data is not encrypted; to keep it, create a volume without encrypted=true from it (volumeName=%s) and copy the data over", v.Name, dev, sig, v.Name)
	}
	fsDev, err = e.crypt.Open(ctx, dev, name, key)
	if errors.Is(err, luks.ErrWrongKey) {
		return "", false, fmt.Errorf("volume %s: the key %s does not open it (%w); it is not formatted: put the volume's own key back at %s", v.Name, path, err, path)
	}
	if err != nil {
		return "", false, fmt.Errorf("volume %s: %w", v.Name, err)
	}
	return fsDev, fresh, nil
}

// keyError is the error of a volume whose key cannot be read.
func keyError(name, path string, err error) error {
	if errors.Is(err, keys.ErrMissing) {
		return fmt.Errorf("volume %s is encrypted and its key %s is missing (%w); nothing was formatted: put its key back at %s (REXRAY_KEYDIR). Without it the volume's data cannot be read", name, path, err, path)
	}
	return fmt.Errorf("volume %s is encrypted and its key %s cannot be read: %w", name, path, err)
}

// sameDevice tells whether the backing device of a mapping, as sysfs
// names it, is dev.
func sameDevice(backing, dev string) bool {
	if backing == "" {
		return false
	}
	if real, err := filepath.EvalSymlinks(dev); err == nil {
		dev = real
	}
	return filepath.Base(backing) == filepath.Base(dev)
}

// lock closes the volume's mapping on this instance, if one is open.
func (e *Engine) lock(ctx context.Context, name string) error {
	if err := e.crypt.Close(ctx, e.mapping(name)); err != nil {
		return fmt.Errorf("close the encrypted device: %w", err)
	}
	return nil
}

// fsDevice is the device v's filesystem is on here: its open mapping, or
// its own device. A mapping that cannot be found reads as none.
func (e *Engine) fsDevice(v drivers.Volume) string {
	if m, open, err := e.crypt.Find(e.mapping(v.Name)); err == nil && open {
		return m.Device
	}
	return v.Device
}

// growMapping makes an encrypted volume's open mapping as large as its
// device, after the device grew.
func (e *Engine) growMapping(ctx context.Context, v drivers.Volume) error {
	if !v.Encrypted {
		return nil
	}
	name := e.mapping(v.Name)
	if _, open, err := e.crypt.Find(name); err != nil || !open {
		return err
	}
	path := e.keys.Path(v.Name)
	key, err := keys.Read(path)
	if err != nil {
		return keyError(v.Name, path, err)
	}
	return e.crypt.Resize(ctx, name, key)
}

// closeStrays closes this instance's mappings of volumes nothing holds
// any more: a plugin that died between steps left them.
func (e *Engine) closeStrays(ctx context.Context) {
	names, err := e.crypt.Names(e.mappingPrefix())
	if err != nil || len(names) == 0 {
		return
	}
	counts, err := e.led.HeldVolumes()
	if err != nil {
		return
	}
	var keep []string
	for v, n := range counts {
		if n > 0 {
			keep = append(keep, e.mapping(v))
		}
	}
	for _, n := range names {
		if slices.Contains(keep, n) {
			continue
		}
		e.log.Warnf("encrypted mapping %s is open for no volume held here: closing it", n)
		if err := e.crypt.Close(ctx, n); err != nil {
			e.log.Errorf("close %s: %v", n, err)
		}
	}
}

// forgetKey removes the key of a volume or snapshot that is gone.
func (e *Engine) forgetKey(ctx context.Context, name, path string) {
	if !keys.Exists(path) {
		return
	}
	if err := keys.Remove(path); err != nil {
		e.logFor(ctx, name).Errorf("it is gone, its key not: %v", err)
		return
	}
	e.logFor(ctx, name).Infof("key %s removed", path)
}
