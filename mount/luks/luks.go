// Package luks opens block devices whose blocks are LUKS2 with the
// kernel's dm-crypt, through cryptsetup: it tells whether the kernel can,
// formats a device that holds nothing, opens it to a mapped device under
// /dev/mapper, and closes it again. Keys reach cryptsetup on its standard
// input, never on a command line or in a temporary file.
package luks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/internal/command"
)

// Signature is what blkid calls a LUKS header.
const Signature = "crypto_LUKS"

// ErrNoDMCrypt marks the error of a host whose kernel cannot map
// encrypted devices.
var ErrNoDMCrypt = errors.New("the kernel lacks dm-crypt")

// ErrWrongKey marks a key that opens no key slot of the header.
var ErrWrongKey = errors.New("the key opens none of its LUKS key slots")

// Host is where the kernel's interfaces are: "/" on a host, another root
// in tests.
type Host struct {
	Root string
}

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// Available tells whether encrypted devices can be opened here: the
// device-mapper's control node, dm-crypt loaded, built in or loadable,
// and cryptsetup on the PATH. Its errors match ErrNoDMCrypt, but for a
// missing cryptsetup, and say what to do.
func (h Host) Available() error {
	if _, err := os.Stat(h.path("/dev/mapper/control")); err != nil {
		return fmt.Errorf("%w: it has no device-mapper (%s is missing); load it on the host with `modprobe dm_crypt`", ErrNoDMCrypt, "/dev/mapper/control")
	}
	if !h.hasDMCrypt() {
		return fmt.Errorf("%w: module dm_crypt is neither loaded (no /sys/module/dm_crypt) nor built in; load it on the host with `modprobe dm_crypt`", ErrNoDMCrypt)
	}
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		return fmt.Errorf("cryptsetup is not installed here (Debian's cryptsetup-bin): %w", err)
	}
	return nil
}

// hasDMCrypt: loaded (or built in with a sysfs entry), or known to the
// running kernel's module lists, which the kernel loads on the first
// crypt table.
func (h Host) hasDMCrypt() bool {
	if _, err := os.Stat(h.path("/sys/module/dm_crypt")); err == nil {
		return true
	}
	var uts unix.Utsname
	if unix.Uname(&uts) != nil {
		return false
	}
	release := unix.ByteSliceToString(uts.Release[:])
	for _, list := range []string{"modules.builtin", "modules.dep"} {
		b, err := os.ReadFile(h.path(filepath.Join("/lib/modules", release, list)))
		if err == nil && bytes.Contains(b, []byte("/dm-crypt.ko")) {
			return true
		}
	}
	return false
}

// Format makes a LUKS2 header on dev, with key in its first key slot:
// aes-xts-plain64 with a 512-bit volume key, whatever cryptsetup's own
// default. The key is 64 random bytes, not a passphrase: a slow key
// derivation would only cost every open time, so PBKDF2 runs its minimum.
func Format(ctx context.Context, dev string, key []byte) error {
	_, err := command.Run(ctx, key, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2",
		"--cipher", "aes-xts-plain64", "--key-size", "512",
		"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", dev)
	if err != nil {
		return fmt.Errorf("format %s as LUKS2: %w", dev, err)
	}
	return nil
}

// Open maps dev's LUKS volume, opened with key, to /dev/mapper/name and
// returns that path. A key that opens no slot fails with ErrWrongKey.
func Open(ctx context.Context, dev, name string, key []byte) (string, error) {
	_, err := command.Run(ctx, key, "cryptsetup", "open", "--type", "luks2", "--key-file", "-", dev, name)
	if rejected(err) {
		return "", fmt.Errorf("open %s: %w (%v)", dev, ErrWrongKey, err)
	}
	if err != nil {
		return "", fmt.Errorf("open %s: %w", dev, err)
	}
	m, ok, err := Find(name)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", fmt.Errorf("open %s: cryptsetup made no mapping %s", dev, name)
	}
	return m.Device, nil
}

// rejected tells whether cryptsetup refused the key: its exit status 2,
// "no permission (bad passphrase)" in cryptsetup(8).
func rejected(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == 2
}

// Close removes the mapping name. A mapping that is not there is not an
// error. One still in use (a filesystem lazily unmounted under a
// container) is removed once its last user lets go.
func Close(ctx context.Context, name string) error {
	if _, ok, err := Find(name); err != nil || !ok {
		return err
	}
	_, err := command.Run(ctx, nil, "cryptsetup", "close", name)
	if err == nil {
		return nil
	}
	if _, derr := command.Run(ctx, nil, "cryptsetup", "close", "--deferred", name); derr != nil {
		return fmt.Errorf("close %s: %w", name, errors.Join(err, derr))
	}
	command.Debugf(ctx, "%s is still in use: it goes at its last close", name)
	return nil
}

// Resize makes the mapping name as large as its device, after the device
// grew.
func Resize(ctx context.Context, name string, key []byte) error {
	if _, err := command.Run(ctx, key, "cryptsetup", "resize", "--key-file", "-", name); err != nil {
		return fmt.Errorf("resize %s: %w", name, err)
	}
	return nil
}

// Mapping is an open mapping: its device, under /dev/mapper, and the
// device it maps.
type Mapping struct {
	Name    string
	Device  string
	Backing string // /dev/loop3
}

// Find finds the mapping name. Its node under /dev/mapper is made if the
// plugin's /dev lacks it (a mapping opened before a restart).
func Find(name string) (Mapping, bool, error) {
	dms, err := filepath.Glob("/sys/block/dm-*")
	if err != nil {
		return Mapping{}, false, err
	}
	for _, dm := range dms {
		if readLine(filepath.Join(dm, "dm", "name")) != name {
			continue
		}
		m := Mapping{Name: name, Device: filepath.Join("/dev/mapper", name)}
		if slaves, _ := os.ReadDir(filepath.Join(dm, "slaves")); len(slaves) == 1 {
			m.Backing = "/dev/" + slaves[0].Name()
		}
		if err := ensureNode(m.Device, readLine(filepath.Join(dm, "dev"))); err != nil {
			return m, true, err
		}
		return m, true, nil
	}
	return Mapping{}, false, nil
}

// Names lists the open mappings whose name begins with prefix.
func Names(prefix string) ([]string, error) {
	dms, err := filepath.Glob("/sys/block/dm-*")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, dm := range dms {
		if n := readLine(filepath.Join(dm, "dm", "name")); strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	return names, nil
}

func readLine(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// ensureNode makes a block node at path for the device numbered majMin
// ("253:0") unless one is there.
func ensureNode(path, majMin string) error {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var maj, min uint32
	if _, err := fmt.Sscanf(majMin, "%d:%d", &maj, &min); err != nil {
		return fmt.Errorf("device number of %s: %q", path, majMin)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	err := unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min)))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mknod", Path: path, Err: err}
	}
	return nil
}
