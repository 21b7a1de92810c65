// Package ledger is this host's memory, kept in a bbolt file so it survives
// plugin restarts and upgrades: the holds on each volume (Docker mount IDs,
// operator commands, CSI publications), and the catalogue of volumes that
// Get and List answer from.
//
// It is never shared between hosts: the file is locked by the one process
// that has it open.
//
// The file is versioned (bucket "meta", key "schema"). Schema 2 keeps the
// keys of schema 1 and puts each hold's kind in its value, so that a
// release that reads schema 1 still counts the holds of a file this one
// wrote: a rollback after a failed upgrade keeps every volume held.
package ledger

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the database file inside the state directory.
const FileName = "rexray.db"

// Schema is the version of the file this package writes.
const Schema = 2

var (
	bucketMeta    = []byte("meta")    // "schema" → decimal version
	bucketMounts  = []byte("mounts")  // volume → bucket of hold keys
	bucketVolumes = []byte("volumes") // volume → JSON drivers.Volume
	bucketPending = []byte("overwrite")
	bucketRemoved = []byte("removing") // volume → when a Remove began
	keySchema     = []byte("schema")
)

// ErrInUse is returned (wrapped) by Open when another process holds the
// ledger: a running plugin, or an operator command.
var ErrInUse = errors.New("is in use by another rexray process")

// ErrNewerSchema is matched (errors.Is) by Open's error for a file whose
// schema this release does not know: reading it could drop holds.
var ErrNewerSchema = errors.New("written by a newer rexray")

// ErrInvalidHold is matched (errors.Is) by the error for a hold that cannot
// be keyed, or whose key could be taken for another kind's.
var ErrInvalidHold = errors.New("invalid hold")

// described is an error that matches a sentinel but reads as its own
// sentence, so a user sees the reason without a prefix.
type described struct {
	sentinel error
	msg      string
}

func (e described) Error() string        { return e.msg }
func (e described) Is(target error) bool { return target == e.sentinel }
func invalid(format string, a ...any) error {
	return described{ErrInvalidHold, fmt.Sprintf(format, a...)}
}

// Kind is who holds a volume.
type Kind string

// The kinds of hold. Their names are written in the file: never rename one.
const (
	// Docker is a Docker mount ID; Hold.ID is the ID.
	Docker Kind = "docker"
	// Legacy is the one hold shared by the clients that send no mount ID
	// (Docker 1.11's protocol, the original dvdcli). They count their own
	// mounts, so every Mount with no ID holds it and the first Unmount with
	// no ID releases it.
	Legacy Kind = "legacy"
	// OperatorMount is `rexray volume mount`.
	OperatorMount Kind = "operator-mount"
	// OperatorAttach is `rexray volume attach`.
	OperatorAttach Kind = "operator-attach"
	// CSI is a CSI publication of the volume's filesystem; Hold.ID is its
	// target path.
	CSI Kind = "csi"
	// CSIBlock is a CSI publication of the volume's block device; Hold.ID
	// is its target path.
	CSIBlock Kind = "csi-block"
	// CSIStage is a CSI staging of the volume on this host, which holds
	// its device; Hold.ID is its staging target path.
	CSIStage Kind = "csi-stage"
)

// The keys of the holds that are not a Docker mount ID. They are schema 1's
// keys, which a release that reads schema 1 still understands.
const (
	reserved  = "rexray:" // begins every key no Docker mount ID may take
	keyLegacy = reserved + "legacy"
	keyCSI    = reserved + "csi:"
	keyBlock  = reserved + "csi-block:"
	keyStage  = reserved + "csi-stage:"
	keyAttach = "rexray-cli-attach"
	keyMount  = "rexray-cli-mount"
)

const (
	maxDockerID = 1024 // what the Docker front door accepts
	maxCSIID    = 4096 // the longest path Linux takes
)

// Hold is one holder of a volume. ID is empty for Legacy and the operator
// kinds. Holds are comparable, so they can key a map.
type Hold struct {
	Kind Kind
	ID   string
}

// DockerHold is the hold of a Docker mount ID.
func DockerHold(id string) Hold { return Hold{Kind: Docker, ID: id} }

// String names the hold for logs and messages.
func (h Hold) String() string {
	switch h.Kind {
	case Docker:
		id := h.ID
		if len(id) > 12 { // as docker shortens its IDs
			id = id[:12] + "…"
		}
		return "docker mount " + id
	case Legacy:
		return "legacy mount (no mount ID)"
	case OperatorMount:
		return "operator mount"
	case OperatorAttach:
		return "operator attach"
	case CSI:
		return "csi publication " + h.ID
	case CSIBlock:
		return "csi block publication " + h.ID
	case CSIStage:
		return "csi staging " + h.ID
	}
	return string(h.Kind) + " " + h.ID
}

// ValidDockerID refuses a mount ID the ledger cannot key, or one that could
// be taken for another kind of hold. The error names what is accepted and
// matches ErrInvalidHold.
func ValidDockerID(id string) error {
	if len(id) == 0 || len(id) > maxDockerID {
		return invalid("invalid mount ID: %d bytes long, 1 to %d are accepted", len(id), maxDockerID)
	}
	if strings.HasPrefix(id, reserved) {
		return invalid("invalid mount ID %q: IDs beginning with %q are reserved", id, reserved)
	}
	if id == keyAttach || id == keyMount {
		return invalid("invalid mount ID %q: it is reserved for the operator's holds", id)
	}
	return nil
}

// Key is the hold as the ledger keys it, and as the operator's API lists
// it (mountIDs): a Docker mount ID as it is, the other kinds by a name
// that begins with "rexray" (for a hold that cannot be keyed, "").
func (h Hold) Key() string {
	k, err := h.key()
	if err != nil {
		return ""
	}
	return string(k)
}

// key is the hold's key in its volume's bucket.
func (h Hold) key() ([]byte, error) {
	var k string
	switch h.Kind {
	case Docker:
		if err := ValidDockerID(h.ID); err != nil {
			return nil, err
		}
		return []byte(h.ID), nil
	case CSI, CSIBlock, CSIStage:
		if len(h.ID) == 0 || len(h.ID) > maxCSIID {
			return nil, invalid("invalid %s hold: path %d bytes long, 1 to %d are accepted", h.Kind, len(h.ID), maxCSIID)
		}
		return []byte(csiKeys[h.Kind] + h.ID), nil
	case Legacy:
		k = keyLegacy
	case OperatorMount:
		k = keyMount
	case OperatorAttach:
		k = keyAttach
	default:
		return nil, invalid("invalid hold: unknown kind %q", h.Kind)
	}
	if h.ID != "" {
		return nil, invalid("invalid hold: %s takes no ID, got %q", Hold{Kind: h.Kind}, h.ID)
	}
	return []byte(k), nil
}

// csiKeys are the key prefixes of the CSI kinds, whose IDs are paths.
var csiKeys = map[Kind]string{CSI: keyCSI, CSIBlock: keyBlock, CSIStage: keyStage}

// record is a hold's value in schema 2.
type record struct {
	Kind  Kind      `json:"kind"`
	Since time.Time `json:"since,omitzero"`
}

// decode reads the hold stored under key k with value v. A value that is not
// a record was written by a release that reads schema 1 (before an upgrade,
// or after a rollback), which kept only the time: the key tells the kind.
func decode(k, v []byte) (Hold, time.Time) {
	key := string(k)
	var r record
	if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &r) != nil || r.Kind == "" {
		r.Since, _ = time.Parse(time.RFC3339, string(v))
		switch {
		case key == keyLegacy:
			r.Kind = Legacy
		case key == keyMount:
			r.Kind = OperatorMount
		case key == keyAttach:
			r.Kind = OperatorAttach
		case strings.HasPrefix(key, keyCSI):
			r.Kind = CSI
		case strings.HasPrefix(key, keyBlock):
			r.Kind = CSIBlock
		case strings.HasPrefix(key, keyStage):
			r.Kind = CSIStage
		default:
			r.Kind = Docker
		}
	}
	switch r.Kind {
	case Docker:
		return DockerHold(key), r.Since
	case CSI, CSIBlock, CSIStage:
		return Hold{Kind: r.Kind, ID: strings.TrimPrefix(key, csiKeys[r.Kind])}, r.Since
	case Legacy, OperatorMount, OperatorAttach:
		return Hold{Kind: r.Kind}, r.Since
	}
	// A kind this release does not know keeps the whole key as its ID, so
	// it is still counted and shown.
	return Hold{Kind: r.Kind, ID: key}, r.Since
}

func encode(h Hold, since time.Time) ([]byte, error) {
	return json.Marshal(record{Kind: h.Kind, Since: since.UTC()})
}

// Store is the open ledger.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the ledger in dir, migrating a schema 1
// file to schema 2. If another process holds it, Open fails after timeout
// instead of waiting forever. A file of a newer schema is refused.
func Open(dir string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state %s %w (locked for more than %s); give each plugin its own REXRAY_STATEDIR", path, ErrInUse, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return prepare(tx, path) }); err != nil {
		db.Close()
		if errors.Is(err, ErrNewerSchema) {
			return nil, err
		}
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// prepare checks the schema, creates the buckets and migrates a schema 1
// file, all in one transaction: a crash leaves the file as it was, or
// wholly schema 2.
func prepare(tx *bolt.Tx, path string) error {
	schema := 1
	if m := tx.Bucket(bucketMeta); m != nil {
		if v := m.Get(keySchema); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("unreadable schema %q", v)
			}
			schema = n
		}
	}
	if schema > Schema {
		return described{ErrNewerSchema, fmt.Sprintf("state %s has schema %d, written by a newer rexray; this release reads schema %d and older: upgrade rexray, or give it a new REXRAY_STATEDIR", path, schema, Schema)}
	}
	for _, b := range [][]byte{bucketMeta, bucketMounts, bucketVolumes, bucketPending, bucketRemoved} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if schema == Schema {
		return nil
	}
	if err := migrateHolds(tx); err != nil {
		return fmt.Errorf("migrate to schema %d: %w", Schema, err)
	}
	return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(Schema)))
}

// migrateHolds rewrites every schema 1 value as a record of its kind and
// time. The keys stay, so a release that reads schema 1 counts the same.
func migrateHolds(tx *bolt.Tx) error {
	mounts := tx.Bucket(bucketMounts)
	var vols [][]byte
	if err := mounts.ForEachBucket(func(k []byte) error {
		vols = append(vols, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	for _, vol := range vols {
		b := mounts.Bucket(vol)
		var keys, vals [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			h, since := decode(k, v)
			val, err := encode(h, since)
			keys, vals = append(keys, bytes.Clone(k)), append(vals, val)
			return err
		}); err != nil {
			return err
		}
		for i := range keys { // bbolt forbids writes to a bucket being iterated
			if err := b.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close releases the database and its lock.
func (s *Store) Close() error { return s.db.Close() }

// AddHold records that h holds the volume. It reports the number of holds
// recorded with it and whether h was new.
func (s *Store) AddHold(volume string, h Hold) (count int, added bool, err error) {
	k, err := h.key()
	if err != nil {
		return 0, false, err
	}
	v, err := encode(h, time.Now())
	if err != nil {
		return 0, false, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketMounts).CreateBucketIfNotExists([]byte(volume))
		if err != nil {
			return err
		}
		if b.Get(k) == nil {
			added = true
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		count = keyCount(b)
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("record %s of %s: %w", h, volume, err)
	}
	return count, added, nil
}

// RemoveHold forgets the hold h of the volume. It reports the number of
// holds left and whether h was recorded.
func (s *Store) RemoveHold(volume string, h Hold) (left int, removed bool, err error) {
	k, err := h.key()
	if err != nil {
		return 0, false, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMounts).Bucket([]byte(volume))
		if b == nil {
			return nil
		}
		if b.Get(k) != nil {
			removed = true
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		left = keyCount(b)
		if left == 0 {
			return tx.Bucket(bucketMounts).DeleteBucket([]byte(volume))
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("forget %s of %s: %w", h, volume, err)
	}
	return left, removed, nil
}

// Holds returns the holds of the volume, sorted by kind then ID, so that
// what is shown and logged does not change between calls.
func (s *Store) Holds(volume string) ([]Hold, error) {
	var holds []Hold
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMounts).Bucket([]byte(volume))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			h, _ := decode(k, v)
			holds = append(holds, h)
			return nil
		})
	})
	slices.SortFunc(holds, func(a, b Hold) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	return holds, err
}

// HeldVolumes maps every held volume to its number of holds.
func (s *Store) HeldVolumes() (map[string]int, error) {
	counts := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMounts).ForEachBucket(func(k []byte) error {
			counts[string(k)] = keyCount(tx.Bucket(bucketMounts).Bucket(k))
			return nil
		})
	})
	return counts, err
}

// ClearHolds forgets every hold of the volume. When there are none it
// writes nothing: a bbolt commit costs an fsync.
func (s *Store) ClearHolds(volume string) error {
	holds, err := s.Holds(volume)
	if err != nil || len(holds) == 0 {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketMounts).DeleteBucket([]byte(volume))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}
