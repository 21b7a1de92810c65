package luks

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rexray/rexray/internal/command"
	"golang.org/x/sys/unix"
)

// fakeRoot is a root with the files given (empty), for Host.
func fakeRoot(t *testing.T, files ...string) Host {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("kernel/drivers/md/dm-crypt.ko: kernel/drivers/md/dm-mod.ko\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Host{Root: root}
}

func release(t *testing.T) string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(uts.Release[:])
}

func TestAvailableSaysWhatTheKernelLacks(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []string
		want  string // "" for available
	}{
		{"no device-mapper", nil, "it has no device-mapper (/dev/mapper/control is missing)"},
		{"no dm_crypt", []string{"dev/mapper/control"}, "module dm_crypt is neither loaded"},
		{"loaded", []string{"dev/mapper/control", "sys/module/dm_crypt/refcnt"}, ""},
		{"loadable", []string{"dev/mapper/control", "lib/modules/" + release(t) + "/modules.dep"}, ""},
		{"built in", []string{"dev/mapper/control", "lib/modules/" + release(t) + "/modules.builtin"}, ""},
		{"another kernel's", []string{"dev/mapper/control", "lib/modules/0.0.0-other/modules.dep"}, "module dm_crypt is neither loaded"},
	} {
		err := fakeRoot(t, c.files...).Available()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: Available() = %v; want nil", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrNoDMCrypt) || !strings.Contains(err.Error(), c.want) ||
			!strings.Contains(err.Error(), "the kernel lacks dm-crypt") || !strings.Contains(err.Error(), "modprobe dm_crypt")):
			t.Errorf("%s: Available() = %v; want ErrNoDMCrypt saying %q and how to load it", c.name, err, c.want)
		}
	}
}

func TestAvailableWithoutCryptsetup(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := fakeRoot(t, "dev/mapper/control", "sys/module/dm_crypt/refcnt").Available()
	if err == nil || errors.Is(err, ErrNoDMCrypt) || !strings.Contains(err.Error(), "cryptsetup-bin") {
		t.Errorf("Available() without cryptsetup = %v; want an error naming cryptsetup-bin, not ErrNoDMCrypt", err)
	}
}

// device is a file as large as a small volume: cryptsetup formats files
// as it does block devices, without the device-mapper.
func device(t *testing.T) string {
	t.Helper()
	keepDevMapper(t)
	dev := filepath.Join(t.TempDir(), "dev.img")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(dev, 20<<20); err != nil {
		t.Fatal(err)
	}
	return dev
}

// testKey has cryptsetup check key against dev's key slots without
// opening anything.
func testKey(ctx context.Context, dev string, key []byte) error {
	_, err := command.Run(ctx, key, "cryptsetup", "open", "--test-passphrase", "--key-file", "-", dev)
	return err
}

// A key is bytes, not a line: all of it, NUL and newlines included, is in
// the key slot, and nothing shorter opens it.
func TestFormatPutsTheWholeKeyInAKeySlot(t *testing.T) {
	ctx := context.Background()
	dev := device(t)
	key := append([]byte("first line\n\x00"), bytes.Repeat([]byte{0xa5}, 51)...)
	if err := Format(ctx, dev, key); err != nil {
		t.Fatal(err)
	}
	dump, err := exec.Command("cryptsetup", "luksDump", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("luksDump: %v\n%s", err, dump)
	}
	for _, want := range []string{"Version:       \t2", "PBKDF:      pbkdf2", "cipher: aes-xts-plain64", "Cipher key: 512 bits"} {
		if !strings.Contains(string(dump), want) {
			t.Errorf("the header lacks %q:\n%s", want, dump)
		}
	}
	if err := testKey(ctx, dev, key); err != nil {
		t.Errorf("the key does not open its slot: %v", err)
	}
	for _, short := range [][]byte{key[:10], key[:11], key[:len(key)-1]} {
		err := testKey(ctx, dev, short)
		if !rejected(err) {
			t.Errorf("a key of %d of its %d bytes: %v; want it refused (exit status 2)", len(short), len(key), err)
		}
	}
}

// rejected tells a refused key from every other failure of cryptsetup.
func TestRejectedIsAWrongKeyOnly(t *testing.T) {
	ctx := context.Background()
	dev := device(t)
	if err := Format(ctx, dev, bytes.Repeat([]byte{1}, 64)); err != nil {
		t.Fatal(err)
	}
	wrong := testKey(ctx, dev, bytes.Repeat([]byte{2}, 64))
	if !rejected(wrong) || !strings.Contains(wrong.Error(), "No key available") {
		t.Errorf("a wrong key: %v; want it rejected, with cryptsetup's words", wrong)
	}
	plain := device(t) // no header
	for what, err := range map[string]error{
		"no LUKS header": testKey(ctx, plain, []byte("k")),
		"no device":      testKey(ctx, filepath.Join(t.TempDir(), "none"), []byte("k")),
		"no key":         testKey(ctx, dev, nil),
	} {
		if err == nil || rejected(err) {
			t.Errorf("%s: %v; want a failure that is not a wrong key", what, err)
		}
	}
}

// A failure says what cryptsetup said, and on what.
func TestFormatFailureNamesTheDeviceAndTheCause(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "none")
	err := Format(context.Background(), dev, []byte("k"))
	if err == nil || !strings.Contains(err.Error(), "format "+dev+" as LUKS2: cryptsetup: ") || !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("Format on nothing = %v; want the device, cryptsetup's message and its status", err)
	}
	msg := strings.TrimPrefix(err.Error(), "format "+dev+" as LUKS2: cryptsetup: ")
	if strings.HasPrefix(msg, "exit status") {
		t.Errorf("Format on nothing = %v; want cryptsetup's own words before its status", err)
	}
}

func TestCloseOfNoMappingIsNotAnError(t *testing.T) {
	if err := Close(context.Background(), "rexray-unit-test-no-such-mapping"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, ok, err := Find("rexray-unit-test-no-such-mapping"); ok || err != nil {
		t.Errorf("Find = %t, %v", ok, err)
	}
}

// keepDevMapper removes, after the test, the /dev/mapper/control that
// cryptsetup run as root makes on a kernel without a device-mapper (a
// node no driver answers): the test leaves /dev as it found it.
func keepDevMapper(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/class/misc/device-mapper"); err == nil {
		return // a real one: never touched
	}
	_, dirErr := os.Lstat("/dev/mapper")
	_, nodeErr := os.Lstat("/dev/mapper/control")
	t.Cleanup(func() {
		if errors.Is(nodeErr, os.ErrNotExist) {
			os.Remove("/dev/mapper/control")
		}
		if errors.Is(dirErr, os.ErrNotExist) {
			os.Remove("/dev/mapper")
		}
	})
}
