package drivers

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"v1", "db-data", "a.b_c", "A", strings.Repeat("x", MaxNameLen)}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", ".", "..", "../x", "a/b", "/abs", "-rf", ".hidden", "a\x00b", "a b", "a\nb", "naïve", `a\b`, strings.Repeat("x", MaxNameLen+1)}
	for _, n := range bad {
		err := ValidateName(n)
		if err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", n)
			continue
		}
		if !strings.Contains(err.Error(), "invalid volume name") {
			t.Errorf("ValidateName(%q) = %q: should say the name is invalid", n, err)
		}
	}
}
