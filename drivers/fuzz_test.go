package drivers

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidateName checks that every accepted name is a single clean path
// element: a name becomes <store>/volumes/<name>.img and <mount root>/<name>,
// so anything else could escape those folders or confuse a tool.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"v1", "a.b_c-d", "", ".", "..", "../x", "a/b", "/abs", "-rf", "a\x00b", "a\n", "naïve", strings.Repeat("x", MaxNameLen)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid volume name") {
				t.Errorf("ValidateName(%q) = %q: should start with \"invalid volume name\"", name, err)
			}
			return
		}
		switch {
		case filepath.Base(name) != name:
			t.Errorf("accepted %q, whose base is %q", name, filepath.Base(name))
		case strings.ContainsAny(name, "/\x00"):
			t.Errorf("accepted %q, which holds a slash or NUL", name)
		case name == "." || name == "..":
			t.Errorf("accepted %q", name)
		case len(name) > MaxNameLen:
			t.Errorf("accepted a name of %d bytes, more than %d", len(name), MaxNameLen)
		case strings.HasPrefix(name, "-"):
			t.Errorf("accepted %q, which a tool would read as a flag", name)
		}
		const store = "/store"
		img := filepath.Join(store, name+".img")
		if filepath.Dir(img) != store {
			t.Errorf("accepted %q, whose image %s is not directly under %s", name, img, store)
		}
	})
}
