// Package state is this host's memory, kept in a bbolt file so it survives
// plugin restarts and upgrades: the Docker mount IDs that hold each volume,
// and the catalogue of volumes that Get and List answer from.
//
// It is never shared between hosts: the file is locked by the one process
// that has it open.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rexray/rexray/drivers"
)

// FileName is the database file inside the state directory.
const FileName = "rexray.db"

var (
	bucketMounts  = []byte("mounts")  // volume → bucket of mount IDs
	bucketVolumes = []byte("volumes") // volume → JSON drivers.Volume
	bucketPending = []byte("overwrite")
	bucketRemoved = []byte("removing") // volume → when a Remove began
)

// ErrInUse is returned (wrapped) by Open when another process holds the
// state: a running plugin, or an operator command.
var ErrInUse = errors.New("is in use by another rexray process")

// Store is the open state database.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the state in dir. If another process holds
// it, Open fails after timeout instead of waiting forever.
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
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMounts, bucketVolumes, bucketPending, bucketRemoved} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close releases the database and its lock.
func (s *Store) Close() error { return s.db.Close() }

// AddMount records that mount ID id holds the volume. It reports the number
// of IDs now recorded and whether id was new.
func (s *Store) AddMount(volume, id string) (count int, added bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketMounts).CreateBucketIfNotExists([]byte(volume))
		if err != nil {
			return err
		}
		if b.Get([]byte(id)) == nil {
			added = true
			if err := b.Put([]byte(id), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
				return err
			}
		}
		count = keyCount(b)
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("record mount %s of %s: %w", id, volume, err)
	}
	return count, added, nil
}

// RemoveMount forgets mount ID id of the volume. It reports the number of
// IDs left and whether id was recorded.
func (s *Store) RemoveMount(volume, id string) (left int, removed bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMounts).Bucket([]byte(volume))
		if b == nil {
			return nil
		}
		if b.Get([]byte(id)) != nil {
			removed = true
			if err := b.Delete([]byte(id)); err != nil {
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
		return 0, false, fmt.Errorf("forget mount %s of %s: %w", id, volume, err)
	}
	return left, removed, nil
}

// Mounts returns the mount IDs that hold the volume.
func (s *Store) Mounts(volume string) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMounts).Bucket([]byte(volume))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}

// MountedVolumes maps every volume with mount IDs to its number of IDs.
func (s *Store) MountedVolumes() (map[string]int, error) {
	counts := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMounts).ForEachBucket(func(k []byte) error {
			counts[string(k)] = keyCount(tx.Bucket(bucketMounts).Bucket(k))
			return nil
		})
	})
	return counts, err
}

// ClearMounts forgets every mount ID of the volume. When there are none it
// writes nothing: a bbolt commit costs an fsync.
func (s *Store) ClearMounts(volume string) error {
	ids, err := s.Mounts(volume)
	if err != nil || len(ids) == 0 {
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

// PutVolume adds or replaces a volume in the catalogue; a volume of that
// name is no longer being removed.
func (s *Store) PutVolume(v drivers.Volume) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRemoved).Delete([]byte(v.Name)); err != nil {
			return err
		}
		return tx.Bucket(bucketVolumes).Put([]byte(v.Name), b)
	})
}

// SyncVolume puts v in the catalogue unless the entry is v already, so that
// a lookup that finds nothing new costs no commit (a bbolt commit costs an
// fsync). Unlike PutVolume it leaves a Remove's mark: seeing a volume is
// not creating it.
func (s *Store) SyncVolume(v drivers.Volume) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	same := false
	err = s.db.View(func(tx *bolt.Tx) error {
		same = bytes.Equal(tx.Bucket(bucketVolumes).Get([]byte(v.Name)), b)
		return nil
	})
	if err != nil || same {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketVolumes).Put([]byte(v.Name), b)
	})
}

// MarkRemoving records that a Remove of the volume begins, and tells
// whether an earlier Remove began after since. A Remove that dies after the
// driver removed the volume is retried by dockerd; the earlier mark tells
// that retry the volume is gone because of it.
func (s *Store) MarkRemoving(name string, at, since time.Time) (earlier bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRemoved)
		if prev := b.Get([]byte(name)); prev != nil {
			t, err := time.Parse(time.RFC3339Nano, string(prev))
			earlier = err == nil && t.After(since)
		}
		return b.Put([]byte(name), []byte(at.UTC().Format(time.RFC3339Nano)))
	})
	return earlier, err
}

// ClearRemoving forgets the Remove mark of the volume.
func (s *Store) ClearRemoving(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRemoved).Delete([]byte(name))
	})
}

// PruneRemoving forgets Remove marks older than before.
func (s *Store) PruneRemoving(before time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRemoved).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if at, err := time.Parse(time.RFC3339Nano, string(v)); err != nil || at.Before(before) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// DeleteVolume removes a volume from the catalogue, with its pending marks.
func (s *Store) DeleteVolume(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPending).Delete([]byte(name)); err != nil {
			return err
		}
		return tx.Bucket(bucketVolumes).Delete([]byte(name))
	})
}

// VolumeNames returns the catalogue's names, sorted, without decoding the
// records: what List needs, at any catalogue size.
func (s *Store) VolumeNames() ([]string, error) {
	var names []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVolumes)
		names = make([]string, 0, b.Stats().KeyN)
		return b.ForEach(func(k, _ []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	return names, err
}

// ReplaceVolumes makes the catalogue exactly vols.
func (s *Store) ReplaceVolumes(vols []drivers.Volume) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketVolumes); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucketVolumes)
		if err != nil {
			return err
		}
		for _, v := range vols {
			j, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(v.Name), j); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetOverwrite marks (or unmarks) a volume to be formatted at its next mount.
func (s *Store) SetOverwrite(name string, on bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if on {
			return tx.Bucket(bucketPending).Put([]byte(name), []byte{1})
		}
		return tx.Bucket(bucketPending).Delete([]byte(name))
	})
}

// Overwrite tells whether the volume is marked to be formatted.
func (s *Store) Overwrite(name string) (bool, error) {
	var on bool
	err := s.db.View(func(tx *bolt.Tx) error {
		on = tx.Bucket(bucketPending).Get([]byte(name)) != nil
		return nil
	})
	return on, err
}

// Volume returns one catalogue entry; ok is false when there is none.
func (s *Store) Volume(name string) (v drivers.Volume, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVolumes).Get([]byte(name))
		if b == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(b, &v)
	})
	if err != nil {
		return v, false, fmt.Errorf("catalogue entry %s: %w", name, err)
	}
	return v, ok, nil
}

// keyCount counts a bucket's keys. Bucket.Stats does not see the changes of
// the transaction in progress.
func keyCount(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}
