package options

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rexray/rexray/mount"
)

// FuzzParseCreate feeds Create options as Docker passes them (-o key=value,
// three of them) to the parser. Whatever the options, a success describes a
// volume that can be made, and a failure says why; the same options always
// get the same answer.
func FuzzParseCreate(f *testing.F) {
	known := map[string]bool{}
	for _, k := range Accepted() {
		known[strings.ToLower(k)] = true
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		opts := map[string]string{k1: v1, k2: v2, k3: v3}
		req, err := Parse(opts, testDefaults)
		if err != nil {
			msg := err.Error()
			if strings.TrimSpace(msg) == "" {
				t.Fatalf("parseCreate(%q) failed with an empty message", opts)
			}
			if strings.Contains(msg, "unknown option") && !strings.Contains(msg, "accepted options are "+strings.Join(Accepted(), ", ")) {
				t.Errorf("parseCreate(%q) = %q: does not list the accepted options", opts, msg)
			}
		} else {
			for k := range opts {
				if !known[strings.ToLower(strings.TrimSpace(k))] {
					t.Errorf("parseCreate(%q) accepted the unknown option %q", opts, k)
				}
			}
			if req.Opts.Size <= 0 {
				t.Errorf("parseCreate(%q) = size %d", opts, req.Opts.Size)
			}
			if !slices.Contains(mount.FSTypes(), req.Opts.FSType) {
				t.Errorf("parseCreate(%q) = fs type %q, not one of %v", opts, req.Opts.FSType, mount.FSTypes())
			}
			if err := mount.CheckSize(req.Opts.FSType, req.Opts.Size); err != nil {
				t.Errorf("parseCreate(%q) accepted a volume mkfs cannot format: %v", opts, err)
			}
		}
		// Docker shows the answer to the user, who runs the command again.
		for range 4 {
			again, err2 := Parse(opts, testDefaults)
			if errString(err2) != errString(err) || err == nil && (!reflect.DeepEqual(again.Opts, req.Opts) || again.Overwrite != req.Overwrite) {
				t.Fatalf("parseCreate(%q) answered %+v, %v, then %+v, %v", opts, req.Opts, err, again.Opts, err2)
			}
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sizeNumber is the number in a size, with its unit if any.
var sizeNumber = regexp.MustCompile(`^\s*([0-9.eE+]+) ?[kKmMgGtTpP]?[iI]?[bB]?\s*$`)

// FuzzParseSize: any string, a positive size or an error that says what is
// wrong with it.
func FuzzParseSize(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "invalid size") {
				t.Errorf("ParseSize(%q) = %q: should say the size is invalid", s, msg)
			}
			// Telling a user who asked for 1e30 GB that the size must be
			// more than 0 sends them the wrong way.
			if m := sizeNumber.FindStringSubmatch(s); m != nil && strings.Contains(msg, "more than 0") {
				if f, err := strconv.ParseFloat(m[1], 64); err == nil && f >= 1 {
					t.Errorf("ParseSize(%q) = %q, but %g is more than 0", s, msg, f)
				}
			}
			return
		}
		if n <= 0 {
			t.Errorf("ParseSize(%q) = %d, nil: a success must be more than 0 bytes", s, n)
		}
	})
}
