package dvdcli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rexray/rexray/internal/durable"
)

// Records keeps the mount IDs dvdcli used on this host, one empty file
// each: <Dir>/<driver>/<volume>/<id>. mesos-module-dvdi's unmount names no
// task, so two tasks on one volume each get an ID, and each unmount
// releases one of them.
type Records struct {
	Dir string
}

// HostRecords keeps them in dir, by default /var/lib/rexray/dvdcli.
func HostRecords(dir string) Records {
	if dir == "" {
		dir = "/var/lib/rexray/dvdcli"
	}
	return Records{Dir: dir}
}

func (r Records) dir(driver, volume string) string { return filepath.Join(r.Dir, driver, volume) }

// Add records id before it is used, so a crash leaves a record to release.
func (r Records) Add(driver, volume, id string) error {
	dir := r.dir(driver, volume)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record mount ID: %w", err)
	}
	path := filepath.Join(dir, id)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("record mount ID: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	// The record is on disk before the mount it stands for, and so are
	// the folders MkdirAll may have just made for it: a record lost in a
	// crash is a mount ID nothing ever releases.
	for _, d := range []string{dir, filepath.Dir(dir), r.Dir} {
		if err == nil {
			err = durable.SyncDir(d)
		}
	}
	if err != nil {
		os.Remove(path) // no mount follows a failed Add
		return fmt.Errorf("record mount ID: %w", err)
	}
	return nil
}

// Remove forgets id.
func (r Records) Remove(driver, volume, id string) error {
	for _, name := range []string{id, id + claimed} {
		if err := os.Remove(filepath.Join(r.dir(driver, volume), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forget mount ID: %w", err)
		}
	}
	os.Remove(r.dir(driver, volume)) // when it was the last
	return nil
}

// claimed marks an ID an unmount is releasing.
const claimed = ".releasing"

// Claim takes one recorded ID for an unmount. A rename claims it, so two
// unmounts running at once never release the same ID. The rename is a
// claim, not a record: a crash that loses it leaves the ID to release, as
// it was, so it is not synced.
func (r Records) Claim(driver, volume string) (string, error) {
	dir := r.dir(driver, volume)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var ids []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), claimed) {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := os.Rename(filepath.Join(dir, id), filepath.Join(dir, id+claimed)); err == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("volume %s is not mounted by dvdcli on this host (no mount ID in %s)", volume, dir)
}

// Unclaim gives back an ID whose unmount failed.
func (r Records) Unclaim(driver, volume, id string) {
	dir := r.dir(driver, volume)
	os.Rename(filepath.Join(dir, id+claimed), filepath.Join(dir, id))
}
