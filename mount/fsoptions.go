package mount

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// An option check: whether a value is accepted, and what is, for errors.
type valueCheck struct {
	ok   func(string) bool
	says string
}

func numberIn(lo, hi int64) valueCheck {
	return valueCheck{func(s string) bool {
		n, err := strconv.ParseInt(s, 10, 64)
		return err == nil && n >= lo && n <= hi && strconv.FormatInt(n, 10) == s
	}, fmt.Sprintf("a whole number from %d to %d", lo, hi)}
}

func oneOf(vals ...string) valueCheck {
	return valueCheck{func(s string) bool { return slices.Contains(vals, s) }, "one of " + strings.Join(vals, ", ")}
}

// A label is plain: letters, digits, '.', '_' and '-', not first.
func label(max int) valueCheck {
	re := regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,%d}$`, max-1))
	return valueCheck{re.MatchString, fmt.Sprintf("a label of up to %d letters, digits, '.', '_' or '-'", max)}
}

// features accepts a comma-separated list of names from allowed, each
// optionally negated with ^.
func features(allowed ...string) valueCheck {
	return valueCheck{func(s string) bool {
		for _, f := range strings.Split(s, ",") {
			if !slices.Contains(allowed, strings.TrimPrefix(f, "^")) {
				return false
			}
		}
		return true
	}, "features (optionally ^negated, comma-separated) among " + strings.Join(allowed, ", ")}
}

// The mkfs flags accepted per filesystem, each taking one value: those
// that shape the filesystem (reserve, inodes, label, block and inode size,
// a few features) and never what rexray relies on (-F, -q, -E's zeroing
// and discard, an external journal or device, a size smaller than the
// volume).
var ext4Features = []string{"metadata_csum", "64bit", "dir_index", "dir_nlink", "extra_isize", "flex_bg", "huge_file", "large_file", "quota", "project", "sparse_super", "inline_data", "large_dir"}

var mkfsFlags = map[string]map[string]valueCheck{
	"ext4": {
		"-m": numberIn(0, 50),                    // reserved blocks, percent
		"-i": numberIn(1024, 67108864),           // bytes per inode
		"-N": numberIn(16, 4294967295),           // inodes
		"-I": oneOf("128", "256", "512", "1024"), // inode size
		"-b": oneOf("1024", "2048", "4096"),
		"-L": label(16),
		"-O": features(ext4Features...),
	},
	"ext3": {
		"-m": numberIn(0, 50),
		"-i": numberIn(1024, 67108864),
		"-N": numberIn(16, 4294967295),
		"-I": oneOf("128", "256", "512", "1024"),
		"-b": oneOf("1024", "2048", "4096"),
		"-L": label(16),
	},
	"xfs": {
		"-L": label(12),
		"-b": oneOf("size=1024", "size=2048", "size=4096"),
		"-i": oneOf("size=256", "size=512", "size=1024", "size=2048"),
		"-m": oneOf("reflink=0", "reflink=1", "bigtime=0", "bigtime=1", "finobt=0", "finobt=1"),
	},
}

// ParseMkfsOptions reads mkfs options as a user gives them, flags and
// values separated by spaces ("-m 1 -L data"), and checks them.
func ParseMkfsOptions(fsType, s string) ([]string, error) {
	opts := strings.Fields(s)
	if len(opts) == 0 {
		return nil, CheckMkfsOptions(fsType, nil)
	}
	return opts, CheckMkfsOptions(fsType, opts)
}

// CheckMkfsOptions accepts only flags of the filesystem's allowlist, each
// followed by an accepted value, so no argument reaches mkfs unchecked.
func CheckMkfsOptions(fsType string, opts []string) error {
	flags, ok := mkfsFlags[fsType]
	if !ok {
		return unknownFS(fsType)
	}
	for i := 0; i < len(opts); i += 2 {
		check, ok := flags[opts[i]]
		if !ok {
			return fmt.Errorf("mkfs option %q is not accepted for %s: accepted are %s, each with a value", opts[i], fsType, strings.Join(slices.Sorted(maps.Keys(flags)), ", "))
		}
		if i+1 == len(opts) {
			return fmt.Errorf("mkfs option %s for %s needs a value: %s", opts[i], fsType, check.says)
		}
		if v := opts[i+1]; !check.ok(v) {
			return fmt.Errorf("mkfs option %s %q is not accepted for %s: give %s", opts[i], v, fsType, check.says)
		}
	}
	return nil
}

// mountFlag is a mount option: a flag, or data for the filesystem.
type mountFlag struct {
	flag uintptr
	data bool
}

// The mount options accepted per filesystem: those that change how it is
// used, never what keeps it consistent (nobarrier, data=writeback, errors=
// are refused).
var commonMountOptions = map[string]mountFlag{
	"noatime":    {flag: unix.MS_NOATIME},
	"nodiratime": {flag: unix.MS_NODIRATIME},
	"relatime":   {flag: unix.MS_RELATIME},
	"lazytime":   {flag: unix.MS_LAZYTIME},
	"ro":         {flag: unix.MS_RDONLY},
	"nosuid":     {flag: unix.MS_NOSUID},
	"nodev":      {flag: unix.MS_NODEV},
	"noexec":     {flag: unix.MS_NOEXEC},
	"discard":    {data: true},
	"nodiscard":  {data: true},
}

var mountOptions = map[string]map[string]mountFlag{
	"ext4": with(commonMountOptions, "nodelalloc", "noauto_da_alloc", "journal_checksum"),
	"ext3": with(commonMountOptions),
	"xfs":  with(commonMountOptions, "inode64", "largeio"),
}

func with(common map[string]mountFlag, data ...string) map[string]mountFlag {
	m := maps.Clone(common)
	for _, d := range data {
		m[d] = mountFlag{data: true}
	}
	return m
}

// ParseMountOptions reads mount options as mount -o takes them
// ("noatime,discard") and checks them.
func ParseMountOptions(fsType, s string) ([]string, error) {
	var opts []string
	for o := range strings.SplitSeq(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			opts = append(opts, o)
		}
	}
	return opts, CheckMountOptions(fsType, opts)
}

// CheckMountOptions refuses an option the filesystem's allowlist lacks,
// naming those it has.
func CheckMountOptions(fsType string, opts []string) error {
	accepted, ok := mountOptions[fsType]
	if !ok {
		return unknownFS(fsType)
	}
	for _, o := range opts {
		if _, ok := accepted[o]; !ok {
			return fmt.Errorf("mount option %q is not accepted for %s: accepted are %s", o, fsType, strings.Join(slices.Sorted(maps.Keys(accepted)), ", "))
		}
	}
	return nil
}

// mountArgs are the flags and data of fsType's mount with opts, which
// CheckMountOptions accepted.
func mountArgs(fsType string, opts []string) (uintptr, string) {
	var flags uintptr
	data := []string{}
	if d := filesystems[fsType].options; d != "" {
		data = append(data, d)
	}
	for _, o := range opts {
		f := mountOptions[fsType][o]
		if f.data {
			data = append(data, o)
		}
		flags |= f.flag
	}
	return flags, strings.Join(data, ",")
}
