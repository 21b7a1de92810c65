package ledger

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rexray/rexray/drivers"
)

const (
	idA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	idB = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw reads the file as a release that knows nothing of schemas does: the
// keys and values of every volume's bucket of holds, and the schema mark.
func raw(t *testing.T, dir string) (holds map[string]map[string]string, schema string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	holds = map[string]map[string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			schema = string(m.Get(keySchema))
		}
		mounts := tx.Bucket(bucketMounts)
		if mounts == nil {
			return nil
		}
		return mounts.ForEachBucket(func(vol []byte) error {
			holds[string(vol)] = map[string]string{}
			return mounts.Bucket(vol).ForEach(func(k, v []byte) error {
				holds[string(vol)][string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return holds, schema
}

// copyFixture puts a ledger file from testdata where Open looks for it.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func wantHolds(t *testing.T, s *Store, volume string, want ...Hold) {
	t.Helper()
	got, err := s.Holds(volume)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Holds(%s) = %v, %v; want %v", volume, got, err, want)
	}
}

// testdata/ledger-v1.db is a schema 1 file, written by the release that
// keeps only a time in each hold's value (the commit that added it says
// how). Upgrading must keep every hold with its kind and time, and the
// whole catalogue.
func TestUpgradeFromSchema1(t *testing.T) {
	dir := copyFixture(t, "ledger-v1.db")
	before, schema := raw(t, dir)
	if schema != "" || len(before["db1"]) != 3 {
		t.Fatalf("fixture: schema %q, db1 holds %v; want no schema and 3 holds", schema, before["db1"])
	}

	s := open(t, dir)
	counts, err := s.HeldVolumes()
	if err != nil || len(counts) != 3 || counts["db1"] != 3 || counts["web"] != 1 || counts["tools"] != 1 {
		t.Errorf("HeldVolumes = %v, %v; want db1:3 web:1 tools:1", counts, err)
	}
	wantHolds(t, s, "db1", DockerHold(idA), DockerHold(idB), Hold{Kind: OperatorAttach})
	wantHolds(t, s, "web", Hold{Kind: Legacy})
	wantHolds(t, s, "tools", Hold{Kind: OperatorMount})

	names, err := s.VolumeNames()
	if want := []string{"db1", "old", "tools", "web"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("VolumeNames = %v, %v; want %v", names, err, want)
	}
	v, ok, err := s.Volume("old")
	if err != nil || !ok || v.Size != 4<<30 || v.FSType != "ext4" || v.Service != "loopback" ||
		!v.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 8, 0, time.UTC)) {
		t.Errorf("Volume(old) = %+v, %v, %v", v, ok, err)
	}
	if on, err := s.Overwrite("old"); err != nil || !on {
		t.Errorf("Overwrite(old) = %v, %v; want true", on, err)
	}
	if on, err := s.Overwrite("db1"); err != nil || on {
		t.Errorf("Overwrite(db1) = %v, %v; want false", on, err)
	}
	// dockerd's retry of the Remove of "gone" must learn that a Remove began.
	if earlier, err := s.MarkRemoving("gone", time.Now(), time.Time{}); err != nil || !earlier {
		t.Errorf("MarkRemoving(gone) = %v, %v; want the fixture's earlier mark", earlier, err)
	}
	s.Close()

	after, schema := raw(t, dir)
	if schema != "2" {
		t.Errorf("schema after Open = %q, want 2", schema)
	}
	for vol, keys := range before {
		for k, v1 := range keys {
			var r record
			if err := json.Unmarshal([]byte(after[vol][k]), &r); err != nil {
				t.Errorf("%s/%s = %q after migration: %v", vol, k, after[vol][k], err)
				continue
			}
			since, _ := time.Parse(time.RFC3339, v1)
			if since.IsZero() || !r.Since.Equal(since) {
				t.Errorf("%s/%s: since %v after migration, want the original %q", vol, k, r.Since, v1)
			}
		}
	}

	// A second Open finds schema 2 and changes nothing.
	s = open(t, dir)
	wantHolds(t, s, "db1", DockerHold(idA), DockerHold(idB), Hold{Kind: OperatorAttach})
	if left, removed, err := s.RemoveHold("db1", DockerHold(idA)); err != nil || !removed || left != 2 {
		t.Errorf("RemoveHold(db1, A) after upgrade = %d, %v, %v; want 2, true", left, removed, err)
	}
	s.Close()
	again, _ := raw(t, dir)
	delete(after["db1"], idA)
	for vol, keys := range after {
		if len(again[vol]) != len(keys) {
			t.Errorf("%s has holds %v after the second Open, want %v", vol, again[vol], keys)
		}
		for k, v := range keys {
			if again[vol][k] != v {
				t.Errorf("%s/%s = %q after the second Open, want %q", vol, k, again[vol][k], v)
			}
		}
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return m.Put(keySchema, []byte("99"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err := Open(dir, time.Second)
	if err == nil {
		s.Close()
		t.Fatal("Open of a schema 99 file succeeded")
	}
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "schema 99") || !strings.Contains(err.Error(), path) {
		t.Errorf("Open = %v; want ErrNewerSchema naming the file and schema 99", err)
	}
	if _, schema := raw(t, dir); schema != "99" {
		t.Errorf("schema after the refused Open = %q, want 99 untouched", schema)
	}
}

// Every kind of hold survives a restart as it was recorded, and counts.
func TestHoldsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	all := []Hold{
		DockerHold(idB), {Kind: CSI, ID: "/data/published/v"}, {Kind: Legacy},
		DockerHold(idA), {Kind: OperatorAttach}, {Kind: OperatorMount},
		// The same path as another kind is another hold.
		{Kind: CSIBlock, ID: "/data/published/v"}, {Kind: CSIStage, ID: "/data/published/v"},
	}
	for i, h := range all {
		n, added, err := s.AddHold("v", h)
		if err != nil || n != i+1 || !added {
			t.Fatalf("AddHold(%v) = %d, %v, %v; want %d, true", h, n, added, err, i+1)
		}
	}
	if n, added, err := s.AddHold("v", DockerHold(idA)); err != nil || n != len(all) || added {
		t.Errorf("second AddHold(A) = %d, %v, %v; want %d, false", n, added, err, len(all))
	}
	s.Close()

	s = open(t, dir)
	defer s.Close()
	wantHolds(t, s, "v", Hold{Kind: CSI, ID: "/data/published/v"}, Hold{Kind: CSIBlock, ID: "/data/published/v"},
		Hold{Kind: CSIStage, ID: "/data/published/v"}, DockerHold(idA), DockerHold(idB),
		Hold{Kind: Legacy}, Hold{Kind: OperatorAttach}, Hold{Kind: OperatorMount})
	if left, removed, err := s.RemoveHold("v", DockerHold("not-held")); err != nil || removed || left != len(all) {
		t.Errorf("RemoveHold(unknown) = %d, %v, %v; want %d, false", left, removed, err, len(all))
	}
	for i, h := range all {
		left, removed, err := s.RemoveHold("v", h)
		if err != nil || !removed || left != len(all)-i-1 {
			t.Errorf("RemoveHold(%v) = %d, %v, %v; want %d, true", h, left, removed, err, len(all)-i-1)
		}
	}
	if m, err := s.HeldVolumes(); err != nil || len(m) != 0 {
		t.Errorf("HeldVolumes after the last release = %v, %v; want none", m, err)
	}
}

// A release that reads schema 1 (a rollback) sees the keys it wrote for
// the same holds: its counts, and its removal by key, still work.
func TestSchema1ReaderSeesTheSameHolds(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for _, h := range []Hold{DockerHold(idA), {Kind: Legacy}, {Kind: OperatorAttach}, {Kind: OperatorMount}} {
		if _, _, err := s.AddHold("v", h); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	holds, _ := raw(t, dir)
	var keys []string
	for k := range holds["v"] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{idA, "rexray-cli-attach", "rexray-cli-mount", "rexray:legacy"}; !slices.Equal(keys, want) {
		t.Errorf("keys a schema 1 reader sees = %v, want %v", keys, want)
	}
}

// After a rollback and a new upgrade, a schema 2 file holds values the
// older release wrote: the key tells their kind.
func TestSchema1ValuesInASchema2File(t *testing.T) {
	dir := t.TempDir()
	open(t, dir).Close()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketMounts).CreateBucket([]byte("v"))
		if err != nil {
			return err
		}
		for _, k := range []string{idA, "rexray-cli-attach", "rexray:legacy"} {
			if err := b.Put([]byte(k), []byte("2026-03-04T05:06:07Z")); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	defer s.Close()
	wantHolds(t, s, "v", DockerHold(idA), Hold{Kind: Legacy}, Hold{Kind: OperatorAttach})
	if left, removed, err := s.RemoveHold("v", Hold{Kind: Legacy}); err != nil || !removed || left != 2 {
		t.Errorf("RemoveHold(legacy) = %d, %v, %v; want 2, true", left, removed, err)
	}
}

func TestInvalidHoldsAreRefused(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	for _, h := range []Hold{
		DockerHold(""), DockerHold(strings.Repeat("a", 1025)),
		DockerHold("rexray-cli-attach"), DockerHold("rexray-cli-mount"),
		DockerHold("rexray:legacy"), DockerHold("rexray:csi:/x"),
		{Kind: Legacy, ID: "x"}, {Kind: OperatorMount, ID: "x"}, {Kind: CSI}, {Kind: CSIBlock}, {Kind: CSIStage},
		{Kind: CSIStage, ID: strings.Repeat("a", 4097)}, {Kind: "nfs", ID: "x"},
	} {
		if _, _, err := s.AddHold("v", h); !errors.Is(err, ErrInvalidHold) {
			t.Errorf("AddHold(%v) = %v, want ErrInvalidHold", h, err)
		}
		if _, _, err := s.RemoveHold("v", h); !errors.Is(err, ErrInvalidHold) {
			t.Errorf("RemoveHold(%v) = %v, want ErrInvalidHold", h, err)
		}
	}
	if m, err := s.HeldVolumes(); err != nil || len(m) != 0 {
		t.Errorf("HeldVolumes after refused holds = %v, %v; want none", m, err)
	}
	if _, _, err := s.AddHold("v", DockerHold(strings.Repeat("a", 1024))); err != nil {
		t.Errorf("AddHold of a 1024-byte ID: %v", err)
	}
}

// The Docker front door shows these messages to whoever sent the ID.
func TestValidDockerIDSaysWhatIsAccepted(t *testing.T) {
	for id, want := range map[string]string{
		"":                            "invalid mount ID: 0 bytes long, 1 to 1024 are accepted",
		strings.Repeat("a", 2000):     "invalid mount ID: 2000 bytes long, 1 to 1024 are accepted",
		"rexray:x":                    `invalid mount ID "rexray:x": IDs beginning with "rexray:" are reserved`,
		"rexray-cli-mount":            `invalid mount ID "rexray-cli-mount": it is reserved for the operator's holds`,
		idA:                           "",
		"a container's own mount ID ": "",
	} {
		err := ValidDockerID(id)
		if got := ""; err != nil {
			got = err.Error()
			if got != want || !errors.Is(err, ErrInvalidHold) {
				t.Errorf("ValidDockerID(%.20q) = %q, want %q matching ErrInvalidHold", id, got, want)
			}
		} else if want != "" {
			t.Errorf("ValidDockerID(%.20q) accepted, want %q", id, want)
		}
	}
}

func TestClearHolds(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for _, h := range []Hold{DockerHold(idA), {Kind: OperatorMount}} {
		s.AddHold("v", h)
	}
	s.AddHold("w", DockerHold(idB))
	if err := s.ClearHolds("v"); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearHolds("never-held"); err != nil {
		t.Errorf("ClearHolds of a volume with none: %v", err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if m, err := s.HeldVolumes(); err != nil || len(m) != 1 || m["w"] != 1 {
		t.Errorf("HeldVolumes after ClearHolds(v) and a restart = %v, %v; want w:1", m, err)
	}
}

func TestHoldString(t *testing.T) {
	for h, want := range map[Hold]string{
		DockerHold(idA):              "docker mount 0123456789ab…",
		DockerHold("short"):          "docker mount short",
		{Kind: Legacy}:               "legacy mount (no mount ID)",
		{Kind: OperatorAttach}:       "operator attach",
		{Kind: OperatorMount}:        "operator mount",
		{Kind: CSI, ID: "/p/v"}:      "csi publication /p/v",
		{Kind: CSIBlock, ID: "/p/b"}: "csi block publication /p/b",
		{Kind: CSIStage, ID: "/s/v"}: "csi staging /s/v",
		{Kind: "nfs", ID: "srv"}:     "nfs srv",
	} {
		if got := h.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", h, got, want)
		}
	}
}

func TestCatalogue(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	v := drivers.Volume{Name: "v1", Size: 1 << 30, Meta: drivers.Meta{FSType: "ext4", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	if err := s.PutVolume(v); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOverwrite("v1", true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	got, ok, err := s.Volume("v1")
	if err != nil || !ok || got.Size != v.Size || !got.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("Volume(v1) after restart = %+v, %v, %v", got, ok, err)
	}
	if on, _ := s.Overwrite("v1"); !on {
		t.Error("overwrite mark lost in a restart")
	}
	if err := s.SyncVolume(drivers.Volume{Name: "v1", Size: 2 << 30}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Volume("v1"); got.Size != 2<<30 {
		t.Errorf("Volume(v1) after SyncVolume: size %d, want %d", got.Size, 2<<30)
	}
	if err := s.ReplaceVolumes([]drivers.Volume{{Name: "v2"}}); err != nil {
		t.Fatal(err)
	}
	if names, _ := s.VolumeNames(); !slices.Equal(names, []string{"v2"}) {
		t.Fatalf("after replace: %v", names)
	}
	if err := s.DeleteVolume("v2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Volume("v2"); ok {
		t.Error("v2 still catalogued after delete")
	}
	// A new volume of a deleted one's name is not formatted for it.
	if err := s.DeleteVolume("v1"); err != nil {
		t.Fatal(err)
	}
	if on, _ := s.Overwrite("v1"); on {
		t.Error("DeleteVolume(v1) left its overwrite mark")
	}
}

// A Remove that died part way is known to dockerd's retry until it is
// cleared or pruned; a new PutVolume of the name clears it too.
func TestRemoveMarks(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if earlier, err := s.MarkRemoving("v", t0, time.Time{}); err != nil || earlier {
		t.Fatalf("first MarkRemoving = %v, %v; want false", earlier, err)
	}
	if earlier, _ := s.MarkRemoving("v", t0.Add(time.Minute), t0.Add(-time.Hour)); !earlier {
		t.Error("retry after the first Remove does not see its mark")
	}
	if earlier, _ := s.MarkRemoving("v", t0.Add(2*time.Minute), t0.Add(time.Hour)); earlier {
		t.Error("a mark older than since counts as earlier")
	}
	if err := s.PruneRemoving(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if earlier, _ := s.MarkRemoving("v", t0, time.Time{}); earlier {
		t.Error("a pruned mark is still seen")
	}
	if err := s.PutVolume(drivers.Volume{Name: "v"}); err != nil {
		t.Fatal(err)
	}
	if earlier, _ := s.MarkRemoving("v", t0, time.Time{}); earlier {
		t.Error("PutVolume left the mark of a Remove")
	}
	if err := s.ClearRemoving("v"); err != nil {
		t.Fatal(err)
	}
	if earlier, _ := s.MarkRemoving("v", t0, time.Time{}); earlier {
		t.Error("ClearRemoving left the mark")
	}
}

// A second process pointed at a ledger in use must fail and say why.
func TestOpenInUse(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	_, err := Open(dir, 100*time.Millisecond)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "REXRAY_STATEDIR") {
		t.Fatalf("second Open = %v, want ErrInUse telling to give each plugin its own REXRAY_STATEDIR", err)
	}
}

func TestLedgerIsNotWorldReadable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	defer s.Close()
	for _, p := range []string{dir, filepath.Join(dir, FileName)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o: group or others can get in", p, perm)
		}
	}
}

// An entry does not follow a volume's attachment: a lookup while it is
// attached here, then one after it was detached, find nothing to commit.
func TestCatalogueKeepsNoAttachment(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	v := drivers.Volume{Name: "v1", Size: 1 << 30, Fields: map[string]string{"image": "/s/v1.img"}}
	if err := s.SyncVolume(v); err != nil {
		t.Fatal(err)
	}
	before := pagesWritten(s)
	attached := v
	attached.Device = "/dev/loop7"
	attached.Fields = map[string]string{"image": "/s/v1.img", attachedTo: "host-a"}
	for _, seen := range []drivers.Volume{attached, v, attached} {
		if err := s.SyncVolume(seen); err != nil {
			t.Fatal(err)
		}
	}
	if n := pagesWritten(s) - before; n != 0 {
		t.Errorf("lookups of a volume attached and detached wrote %d pages, want none", n)
	}
	if attached.Fields[attachedTo] != "host-a" {
		t.Error("SyncVolume changed its caller's fields")
	}
	if err := s.PutVolume(attached); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Volume("v1")
	if err != nil || got.Fields["image"] != "/s/v1.img" || got.Fields[attachedTo] != "" || got.Device != "" {
		t.Errorf("catalogue entry = %+v, %v; want the image kept, no attachment", got, err)
	}
	// What lasts is still followed.
	grown := v
	grown.Size = 2 << 30
	if err := s.SyncVolume(grown); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Volume("v1"); got.Size != 2<<30 {
		t.Errorf("size after a grown volume's lookup = %d, want %d", got.Size, 2<<30)
	}
}

func pagesWritten(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}

// TestClusterVolumes: List learns which names are Swarm's from one read of
// the catalogue; a volume made through Docker's API is not among them.
func TestClusterVolumes(t *testing.T) {
	s := open(t, t.TempDir())
	for _, v := range []drivers.Volume{{Name: "docker1"}, {Name: "swarm1", Meta: drivers.Meta{Cluster: true}}, {Name: "docker2"}} {
		if err := s.PutVolume(v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ClusterVolumes()
	if err != nil || len(got) != 1 || !got["swarm1"] {
		t.Errorf("ClusterVolumes = %v, %v; want only swarm1", got, err)
	}
}

// TestReplaceVolumesWritesOnlyWhatDiffers: a start over an unchanged store
// commits nothing; a changed entry is rewritten, a new one added, one the
// store no longer has dropped, and the others kept as they were.
func TestReplaceVolumesWritesOnlyWhatDiffers(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	vols := []drivers.Volume{{Name: "a", Size: 1}, {Name: "b", Size: 2}, {Name: "c", Size: 3}}
	if err := s.ReplaceVolumes(vols); err != nil {
		t.Fatal(err)
	}
	before := pagesWritten(s)
	if err := s.ReplaceVolumes(vols); err != nil {
		t.Fatal(err)
	}
	if after := pagesWritten(s); after != before {
		t.Errorf("replacing the catalogue with what it holds wrote %d pages, want none", after-before)
	}
	next := []drivers.Volume{{Name: "a", Size: 1}, {Name: "b", Size: 20}, {Name: "d", Size: 4}}
	if err := s.ReplaceVolumes(next); err != nil {
		t.Fatal(err)
	}
	names, err := s.VolumeNames()
	if err != nil || !slices.Equal(names, []string{"a", "b", "d"}) {
		t.Fatalf("after replace: %v, %v; want a b d", names, err)
	}
	for _, want := range next {
		if got, ok, err := s.Volume(want.Name); err != nil || !ok || got.Size != want.Size {
			t.Errorf("Volume(%s) = %+v, %v, %v; want size %d", want.Name, got, ok, err, want.Size)
		}
	}
}
