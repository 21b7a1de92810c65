package drivers

import (
	"fmt"
	"regexp"
)

// MaxNameLen bounds volume names so that "<name>.json" and friends fit in
// any filesystem's 255-byte file name limit.
const MaxNameLen = 200

// validName is the rule of Docker's own local driver: a name that is a single
// path element no tool can mistake for a flag.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ValidateName refuses names that could escape a directory or confuse a
// tool: a name becomes a file name in the store and a directory under the
// mount root.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("invalid volume name: the name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("invalid volume name: %d bytes long, at most %d are accepted", len(name), MaxNameLen)
	case !validName.MatchString(name):
		return fmt.Errorf("invalid volume name %q: accepted are letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	return nil
}
