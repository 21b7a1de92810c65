package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rexray/rexray/drivers"
)

// PutVolume adds or replaces a volume in the catalogue; a volume of that
// name is no longer being removed.
func (s *Store) PutVolume(v drivers.Volume) error {
	b, err := entry(v)
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
	b, err := entry(v)
	if err != nil {
		return err
	}
	prev, err := s.get(bucketVolumes, v.Name)
	if err != nil || bytes.Equal(prev, b) {
		return err
	}
	return s.set(bucketVolumes, v.Name, b)
}

// attachedTo is the field in which a driver names the hosts a volume is
// attached to now.
const attachedTo = "attachedTo"

// entry is v as the catalogue keeps it: what lasts, not which host has it
// attached at the moment (a platform answers that; the device is never
// kept). Every docker run attaches and detaches its volume twice, and Get
// comes between: an entry that followed the attachment would cost two
// commits, four fsyncs, per cycle.
func entry(v drivers.Volume) ([]byte, error) {
	if _, ok := v.Fields[attachedTo]; ok {
		v.Fields = maps.Clone(v.Fields)
		delete(v.Fields, attachedTo)
	}
	return json.Marshal(v)
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
func (s *Store) ClearRemoving(name string) error { return s.set(bucketRemoved, name, nil) }

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

// ClusterVolumes is the set of catalogued Swarm cluster volumes, read in
// one transaction: a List of thousands of volumes asks it once, not once
// per name.
func (s *Store) ClusterVolumes() (map[string]bool, error) {
	cluster := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketVolumes).ForEach(func(k, v []byte) error {
			var rec struct {
				Cluster bool `json:"cluster"`
			}
			// An entry that does not decode is no cluster volume's: List
			// still answers, as Volume's error is ignored there. Only an
			// entry that holds the field is decoded: entry writes it
			// compact, and a List of 10,000 volumes would otherwise
			// decode 10,000 records for the few, if any, that are.
			if !bytes.Contains(v, clusterField) {
				return nil
			}
			if json.Unmarshal(v, &rec) == nil && rec.Cluster {
				cluster[string(k)] = true
			}
			return nil
		})
	})
	return cluster, err
}

// clusterField is how entry writes a cluster volume's mark.
var clusterField = []byte(`"cluster":true`)

// ReplaceVolumes makes the catalogue exactly vols. Only the entries that
// differ are written: at every start the catalogue is mostly what it was,
// and rewriting 10,000 unchanged entries would hold them all as dirty
// pages, and write them, for nothing. With nothing differing, nothing is
// committed (a commit costs two fsyncs).
func (s *Store) ReplaceVolumes(vols []drivers.Volume) error {
	entries := make(map[string][]byte, len(vols))
	for _, v := range vols {
		j, err := entry(v)
		if err != nil {
			return err
		}
		entries[v.Name] = j
	}
	same := true
	if err := s.db.View(func(tx *bolt.Tx) error {
		same = catalogueIs(tx.Bucket(bucketVolumes), entries)
		return nil
	}); err != nil || same {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVolumes)
		var stale [][]byte
		if err := b.ForEach(func(k, _ []byte) error {
			if _, ok := entries[string(k)]; !ok {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale { // bbolt forbids writes to a bucket being iterated
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for name, j := range entries {
			if bytes.Equal(b.Get([]byte(name)), j) {
				continue
			}
			if err := b.Put([]byte(name), j); err != nil {
				return err
			}
		}
		return nil
	})
}

// catalogueIs tells whether bucket b holds exactly entries.
func catalogueIs(b *bolt.Bucket, entries map[string][]byte) bool {
	n := 0
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		j, ok := entries[string(k)]
		if !ok || !bytes.Equal(v, j) {
			return false
		}
		n++
	}
	return n == len(entries)
}

// SetOverwrite marks (or unmarks) a volume to be formatted at its next mount.
func (s *Store) SetOverwrite(name string, on bool) error {
	var mark []byte
	if on {
		mark = []byte{1}
	}
	return s.set(bucketPending, name, mark)
}

// Overwrite tells whether the volume is marked to be formatted.
func (s *Store) Overwrite(name string) (bool, error) {
	mark, err := s.get(bucketPending, name)
	return mark != nil, err
}

// Volume returns one catalogue entry; ok is false when there is none.
func (s *Store) Volume(name string) (v drivers.Volume, ok bool, err error) {
	b, err := s.get(bucketVolumes, name)
	if err == nil && b != nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		return v, false, fmt.Errorf("catalogue entry %s: %w", name, err)
	}
	return v, b != nil, nil
}

// get returns a copy of key's value in bucket, nil if there is none.
func (s *Store) get(bucket []byte, key string) (v []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucket).Get([]byte(key)))
		return nil
	})
	return v, err
}

// set puts val under key in bucket, or deletes key when val is nil.
func (s *Store) set(bucket []byte, key string, val []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if val == nil {
			return tx.Bucket(bucket).Delete([]byte(key))
		}
		return tx.Bucket(bucket).Put([]byte(key), val)
	})
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
