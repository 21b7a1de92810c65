package options

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rexray/rexray/drivers"
)

const gib = 1 << 30

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"1":      gib,
		"16":     16 * gib,
		"1.5":    gib + gib/2,
		"512MiB": 512 << 20,
		"512m":   512 << 20,
		"2G":     2 * gib,
		"2GiB":   2 * gib,
		" 3 ":    3 * gib,
	}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "abc", "1e400", "NaN", "Inf", "0MiB", "-5G", "12XB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

var testDefaults = Defaults{Size: "16", FSType: "ext4"}

func TestParseCreate(t *testing.T) {
	req, err := Parse(map[string]string{
		"Size": "1", "VolumeType": "gold", "IOPS": "100", "AvailabilityZone": "z1", "fsType": "XFS", "OverwriteFS": "true", "Pool": "fast",
	}, testDefaults)
	if err != nil {
		t.Fatal(err)
	}
	want := drivers.CreateOptions{Size: gib, FSType: "xfs", Type: "gold", IOPS: 100, AvailabilityZone: "z1", Pool: "fast"}
	if !reflect.DeepEqual(req.Opts, want) || !req.Overwrite {
		t.Errorf("Parse = %+v overwrite=%v, want %+v overwrite=true", req.Opts, req.Overwrite, want)
	}

	req, err = Parse(nil, testDefaults)
	if err != nil || req.Opts.Size != 16*gib || req.Opts.FSType != "ext4" {
		t.Errorf("defaults: %+v, %v", req.Opts, err)
	}
}

func TestParseOwner(t *testing.T) {
	req, err := Parse(map[string]string{"UID": "1000", "gid": "100", "Mode": "750"}, testDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if want := (drivers.Shape{UID: 1000, GID: 100, Mode: "0750"}); !reflect.DeepEqual(req.Opts.Shape, want) {
		t.Errorf("Parse = %+v, want %+v", req.Opts.Shape, want)
	}
	v := drivers.Volume{Size: 16 * gib, Meta: drivers.Meta{FSType: "ext4", Shape: drivers.Shape{UID: 1000, GID: 100, Mode: "0750"}}}
	if d := req.Conflicts(v); len(d) != 0 {
		t.Errorf("same owner: conflicts %v", d)
	}
	v.UID, v.Mode = 0, "0700"
	if d := req.Conflicts(v); len(d) != 2 || d[0] != "mode is 0700, not 0750" || d[1] != "uid is 0, not 1000" {
		t.Errorf("other owner: conflicts %v, want mode and uid", d)
	}
}

func TestParseFSOptions(t *testing.T) {
	req, err := Parse(map[string]string{"MkfsOpts": "-m 0  -L data", "mountOpts": "noatime,discard"}, testDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(req.Opts.MkfsOpts, []string{"-m", "0", "-L", "data"}) || !slices.Equal(req.Opts.MountOpts, []string{"noatime", "discard"}) {
		t.Errorf("Parse = %q, %q", req.Opts.MkfsOpts, req.Opts.MountOpts)
	}
	v := drivers.Volume{Size: 16 * gib, Meta: drivers.Meta{FSType: "ext4", Shape: drivers.Shape{MkfsOpts: []string{"-m", "0", "-L", "data"}, MountOpts: []string{"noatime"}}}}
	if d := req.Conflicts(v); len(d) != 1 || d[0] != "mountopts is noatime, not noatime,discard" {
		t.Errorf("conflicts %v, want mountopts", d)
	}
}

func TestACopyKeepsItsSourcesShapeUnlessGiven(t *testing.T) {
	req, err := Parse(map[string]string{"volumeName": "src", "mountopts": "noatime"}, testDefaults)
	if err != nil {
		t.Fatal(err)
	}
	src := drivers.Shape{UID: 7, Mode: "0750", MkfsOpts: []string{"-m", "0"}, MountOpts: []string{"discard"}}
	want := drivers.Shape{UID: 7, Mode: "0750", MkfsOpts: []string{"-m", "0"}, MountOpts: []string{"noatime"}}
	if got := KeepShape(req, src); !reflect.DeepEqual(got, want) {
		t.Errorf("KeepShape = %+v, want %+v", got, want)
	}
}

func TestParseCreateErrors(t *testing.T) {
	cases := []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"color": "red"}, "accepted options are size, volumeType"},
		{map[string]string{"pool": "../x"}, "pool: invalid"},
		{map[string]string{"size": "0"}, "invalid size"},
		{map[string]string{"size": "abc"}, "invalid size"},
		{map[string]string{"newfstype": "foo"}, `unknown filesystem type "foo": accepted are ext3, ext4, xfs`},
		{map[string]string{"newfstype": "-O ^has_journal"}, "unknown filesystem type"},
		{map[string]string{"size": "1MiB"}, "too small for ext4"},
		{map[string]string{"size": "100MiB", "newfstype": "xfs"}, "too small for xfs: at least 300MiB"},
		{map[string]string{"iops": "-3"}, "invalid iops"},
		{map[string]string{"overwritefs": "maybe"}, "invalid overwritefs"},
		{map[string]string{"size": "1", "SIZE": "2"}, "given twice"},
		{map[string]string{"fstype": "ext4", "newfstype": "xfs"}, "given twice"},
		{map[string]string{"uid": "-1"}, "invalid uid -1: give a number from 0 to 4294967294"},
		{map[string]string{"gid": "4294967295"}, "invalid gid 4294967295"},
		{map[string]string{"uid": "bob"}, `invalid uid "bob": give a number`},
		{map[string]string{"mode": "4755"}, "setuid, setgid and sticky bits are refused"},
		{map[string]string{"mode": "1777"}, "setuid, setgid and sticky bits are refused"},
		{map[string]string{"mode": "0"}, "no one but root may enter"},
		{map[string]string{"mode": "0789"}, "in octal"},
		{map[string]string{"mode": "rwx"}, "in octal"},
		{map[string]string{"mountopts": "noatime,nobarrier"}, `invalid mountopts: mount option "nobarrier" is not accepted for ext4: accepted are`},
		{map[string]string{"mountopts": "nodelalloc", "fstype": "xfs"}, `"nodelalloc" is not accepted for xfs`},
		{map[string]string{"mkfsopts": "-E lazy_itable_init=1"}, `invalid mkfsopts: mkfs option "-E" is not accepted for ext4`},
		{map[string]string{"mkfsopts": "-m 1", "fstype": "xfs", "size": "1"}, `mkfs option -m "1" is not accepted for xfs: give one of reflink=0`},
	}
	for _, tc := range cases {
		_, err := Parse(tc.opts, testDefaults)
		if !errors.Is(err, drivers.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%v) = %v, want an ErrInvalid containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestConflicts(t *testing.T) {
	existing := drivers.Volume{Name: "v", Size: gib, Meta: drivers.Meta{FSType: "ext4"}}
	same, _ := Parse(map[string]string{"size": "1"}, testDefaults)
	if d := same.Conflicts(existing); len(d) != 0 {
		t.Errorf("same size: conflicts %v", d)
	}
	// Options not given are not compared: the defaults may have changed.
	none, _ := Parse(nil, testDefaults)
	if d := none.Conflicts(existing); len(d) != 0 {
		t.Errorf("no options: conflicts %v", d)
	}
	other, _ := Parse(map[string]string{"size": "2", "fstype": "xfs"}, testDefaults)
	d := other.Conflicts(existing)
	if len(d) != 2 || !strings.Contains(strings.Join(d, ";"), "size is 1GiB, not 2GiB") {
		t.Errorf("different size and fs: conflicts %v", d)
	}
}
