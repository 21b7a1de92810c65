package drivers

import "regexp"

// MaxNameLen bounds volume names so that "<name>.json" and friends fit in
// any filesystem's 255-byte file name limit.
const MaxNameLen = 200

// validName is the rule of Docker's own local driver: a name that is a single
// path element no tool can mistake for a flag.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ValidateName refuses volume names that could escape a directory or
// confuse a tool: a name becomes a file name in the store and a directory
// under the mount root.
func ValidateName(name string) error { return ValidateNameOf("volume", name) }

// ValidateSnapshotName is ValidateName for snapshots, which are files in
// the store too.
func ValidateSnapshotName(name string) error { return ValidateNameOf("snapshot", name) }

// ValidateNameOf applies the volume name rule to another kind of name
// (snapshot, pool, instance), naming that kind in the error.
func ValidateNameOf(kind, name string) error {
	switch {
	case name == "":
		return Invalid("invalid %s name: the name is empty", kind)
	case len(name) > MaxNameLen:
		return Invalid("invalid %s name: %d bytes long, at most %d are accepted", kind, len(name), MaxNameLen)
	case !validName.MatchString(name):
		return Invalid("invalid %s name %q: accepted are letters, digits, '_', '.' and '-', starting with a letter or digit", kind, name)
	}
	return nil
}
