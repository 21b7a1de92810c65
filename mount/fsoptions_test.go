package mount

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMkfsOptions(t *testing.T) {
	good := map[string]string{
		"ext4": "-m 1 -i 16384 -N 5000 -I 256 -b 4096 -L data.1 -O metadata_csum,^huge_file",
		"ext3": "-m 0 -L old",
		"xfs":  "-L logs -b size=4096 -i size=512 -m reflink=1",
	}
	for fs, s := range good {
		opts, err := ParseMkfsOptions(fs, s)
		if err != nil || strings.Join(opts, " ") != s {
			t.Errorf("ParseMkfsOptions(%s, %q) = %q, %v", fs, s, opts, err)
		}
	}
	if opts, err := ParseMkfsOptions("ext4", "  "); opts != nil || err != nil {
		t.Errorf("no options: %q, %v", opts, err)
	}
	bad := []struct{ fs, s, want string }{
		{"ext4", "-E nodiscard", `mkfs option "-E" is not accepted for ext4: accepted are -I, -L, -N, -O, -b, -i, -m`},
		{"ext4", "-F", `"-F" is not accepted`},
		{"ext4", "-m", "needs a value"},
		{"ext4", "-m 60", "a whole number from 0 to 50"},
		{"ext4", "-m 1;reboot", "a whole number"},
		{"ext4", "-L -F", "a label of up to 16"},
		{"ext4", "-L $(reboot)", "a label"},
		{"ext4", "-L averyveryverylonglabel", "a label of up to 16"},
		{"ext4", "-O ^has_journal", "features"},
		{"ext4", "-O resize_inode", "features"},
		{"xfs", "-m crc=0", "one of reflink=0"},
		{"xfs", "-d agcount=1", `"-d" is not accepted for xfs`},
		{"xfs", "-L thirteenchars", "up to 12"},
		{"ext4", "/dev/sda", `"/dev/sda" is not accepted`},
	}
	for _, tc := range bad {
		if _, err := ParseMkfsOptions(tc.fs, tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMkfsOptions(%s, %q) = %v, want an error saying %q", tc.fs, tc.s, err, tc.want)
		}
	}
	cmd, err := MkfsCommand("ext4", "/dev/loop9", true, "-m", "1", "-L", "x")
	if err != nil || !slices.Equal(cmd[len(cmd)-5:], []string{"-m", "1", "-L", "x", "/dev/loop9"}) {
		t.Errorf("MkfsCommand = %q, %v; want the options each apart, then the device", cmd, err)
	}
	if _, err := MkfsCommand("ext4", "/dev/loop9", true, "-E", "x"); err == nil {
		t.Error("MkfsCommand took an option off the allowlist")
	}
}

func TestMountOptions(t *testing.T) {
	opts, err := ParseMountOptions("ext4", " noatime, nodiratime,discard,ro")
	if err != nil || strings.Join(opts, ",") != "noatime,nodiratime,discard,ro" {
		t.Fatalf("ParseMountOptions = %q, %v", opts, err)
	}
	flags, data := mountArgs("ext4", opts)
	if flags != unix.MS_NOATIME|unix.MS_NODIRATIME|unix.MS_RDONLY || data != "discard" {
		t.Errorf("mountArgs = %#x, %q; want noatime|nodiratime|rdonly, discard", flags, data)
	}
	if _, data := mountArgs("xfs", []string{"discard"}); data != "nouuid,discard" {
		t.Errorf("xfs data %q, want nouuid,discard", data)
	}
	for _, o := range []string{"nobarrier", "barrier=0", "data=writeback", "errors=continue", "nouuid", "discard;reboot"} {
		_, err := ParseMountOptions("ext4", o)
		if err == nil || !strings.Contains(err.Error(), "accepted are discard, journal_checksum, lazytime") {
			t.Errorf("ParseMountOptions(ext4, %q) = %v, want a refusal listing the accepted", o, err)
		}
	}
	if _, err := ParseMountOptions("xfs", "nodelalloc"); err == nil {
		t.Error("xfs took ext4's nodelalloc")
	}
}
