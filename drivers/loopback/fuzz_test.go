package loopback

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

// FuzzMetadataDecode puts arbitrary bytes where a volume's metadata lives,
// as a damaged or hand-edited shared store would, next to one good volume.
// Inspect and List may refuse the record, or List may skip it, but neither
// may panic, report a volume under a name other than its file's, let the
// record point the volume at another image, or lose the good volume.
func FuzzMetadataDecode(f *testing.F) {
	good := drivers.Volume{Name: "good", Size: 16 << 20, Meta: drivers.Meta{FSType: "ext4", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	goodMeta, err := json.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, meta []byte) {
		ctx := context.Background()
		d, err := New(Config{VolumePath: t.TempDir(), Instance: "h1"})
		if err != nil {
			t.Fatal(err)
		}
		for path, b := range map[string][]byte{d.metaPath("good"): goodMeta, d.imagePath("good"): nil} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if !fileName(name) || name == "good" {
			return
		}
		// Files are written under any name the store's filesystem takes,
		// valid volume name or not: other tools may have put them there.
		if err := os.WriteFile(d.metaPath(name), meta, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(d.imagePath(name), nil, 0o600); err != nil {
			t.Fatal(err)
		}

		v, err := d.Inspect(ctx, name)
		switch {
		case drivers.ValidateName(name) != nil:
			if err == nil {
				t.Fatalf("Inspect(%q) of an invalid name = %+v, want an error", name, v)
			}
		case err != nil:
			if !strings.Contains(err.Error(), d.metaPath(name)) {
				t.Errorf("Inspect(%q) = %q: does not name the file to look at", name, err)
			}
		default:
			checkVolume(t, d, v)
		}
		inspected := err == nil

		vols, err := d.List(ctx)
		if err != nil {
			if inspected || !strings.Contains(err.Error(), d.metaPath(name)) {
				t.Fatalf("List = %q, but the only doubtful record is %s (Inspect succeeded: %v)", err, d.metaPath(name), inspected)
			}
			return
		}
		seen := map[string]bool{}
		for _, v := range vols {
			if seen[v.Name] {
				t.Errorf("List reports %q twice", v.Name)
			}
			seen[v.Name] = true
			checkVolume(t, d, v)
		}
		if inspected != seen[name] {
			t.Errorf("Inspect(%q) succeeded: %v, but List reports it: %v", name, inspected, seen[name])
		}
		if !seen["good"] || len(vols) > 2 {
			t.Errorf("List = %+v, want good and at most %q", vols, name)
		}
		for _, v := range vols {
			if v.Name == "good" && (v.Size != good.Size || v.FSType != good.FSType || !v.CreatedAt.Equal(good.CreatedAt)) {
				t.Errorf("good volume reported as %+v", v)
			}
		}
	})
}

// checkVolume checks what the driver reports of a volume against its files.
func checkVolume(t *testing.T, d *Driver, v drivers.Volume) {
	t.Helper()
	if err := drivers.ValidateName(v.Name); err != nil {
		t.Errorf("reported volume: %v", err)
	}
	if _, err := os.Stat(d.metaPath(v.Name)); err != nil {
		t.Errorf("reported volume %q has no metadata file: %v", v.Name, err)
	}
	if img := v.Fields["image"]; img != d.imagePath(v.Name) || filepath.Dir(img) != d.dir {
		t.Errorf("volume %q reported with image %q, want %q", v.Name, img, d.imagePath(v.Name))
	}
	if v.Device != "" {
		t.Errorf("volume %q reported attached as %s; nothing attached it", v.Name, v.Device)
	}
}

// fileName tells whether name+".json" is a file name, one that a directory
// can hold ("", "." and ".." give ".json", "..json" and "...json").
func fileName(name string) bool {
	return len(name)+len(".json") <= 255 && !strings.ContainsAny(name, "/\x00")
}
