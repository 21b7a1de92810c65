//go:build integration

package loopback

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/rexray/rexray/drivers"
)

// copyChild is set in the process TestCopyKilledPartWay starts and kills:
// it copies the volume "src" of the store it names into "copy".
const copyChild = "REXRAY_TEST_COPY_STORE"

func TestMain(m *testing.M) {
	if store := os.Getenv(copyChild); store != "" {
		d, err := New(Config{VolumePath: store, Instance: "h1"})
		if err == nil {
			_, err = d.Create(context.Background(), "copy", drivers.CreateOptions{FromVolume: "src"})
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A copy killed part way (kill -9) leaves no image under the volume's name,
// nothing that survives a restart unseen, and the same Create made again
// succeeds. Another host's build in progress is left alone.
func TestCopyKilledPartWay(t *testing.T) {
	ctx := context.Background()
	store := t.TempDir()
	d, err := New(Config{VolumePath: store, Instance: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 * mib
	if _, err := d.Create(ctx, "src", drivers.CreateOptions{Size: size, FSType: "ext4"}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	writeAt(t, d, "src", 0, data)
	// Another host (h2) is building an image of its own in the store.
	other, err := New(Config{VolumePath: store, Instance: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	othersTemp := other.vols.imageTemp("copy")
	if err := os.WriteFile(othersTemp, []byte("h2's"), 0o600); err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), copyChild+"="+store)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	// Half way: some of the data is copied, wherever the copy is made.
	temp := d.vols.imageTemp("copy")
	for copied(temp) < 16*mib && copied(d.imagePath("copy")) < 16*mib {
		select {
		case err := <-exited:
			t.Fatalf("the copy ended before it could be killed: %v", err)
		default:
		}
	}
	child.Process.Signal(syscall.SIGKILL)
	if err := <-exited; err == nil {
		t.Fatal("the copy finished before it could be killed")
	}

	if _, err := os.Lstat(d.imagePath("copy")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the kill, the volume's own image %s is there without metadata (%v)", d.imagePath("copy"), err)
	}
	// The plugin starts again.
	d, err = New(Config{VolumePath: store, Instance: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(temp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed copy's %s is still there after a restart", temp)
	}
	if b, err := os.ReadFile(othersTemp); err != nil || string(b) != "h2's" {
		t.Errorf("another host's build %s was touched: %q, %v", othersTemp, b, err)
	}
	os.Remove(othersTemp)
	if vols, err := d.List(ctx); err != nil || len(vols) != 1 {
		t.Errorf("List = %v, %v; want src alone", vols, err)
	}
	if names := storeFiles(t, d); !slices.Equal(names, []string{"src.img", "src.json"}) {
		t.Errorf("the store holds %v, want src's files alone", names)
	}

	// dockerd's retry, or the user's.
	if _, err := d.Create(ctx, "copy", drivers.CreateOptions{FromVolume: "src"}); err != nil {
		t.Fatalf("the Create made again: %v", err)
	}
	got, err := os.ReadFile(d.imagePath("copy"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the copy made again differs from its source (%d bytes, %v)", len(got), err)
	}
}

// copied is how much data the file at path holds, 0 if there is none.
func copied(path string) int64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

func storeFiles(t *testing.T, d *Driver) []string {
	t.Helper()
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Base(e.Name()))
	}
	return names
}

// A build in progress (locked) is not taken for a leftover by a start in
// another process of the same host.
func TestSweepLeavesABuildInProgress(t *testing.T) {
	store := t.TempDir()
	d, err := New(Config{VolumePath: store, Instance: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.vols.lockedTemp("busy")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := New(Config{VolumePath: store, Instance: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.Name()); err != nil {
		t.Errorf("a build in progress was swept: %v", err)
	}
}
