//go:build integration

package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
)

// createAtOnce sends one Create per host at the same moment and returns
// their errors, in the hosts' order.
func createAtOnce(hosts []*Plugin, name string, opts []map[string]string) []error {
	errs := make([]error, len(hosts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range hosts {
		wg.Go(func() {
			<-start
			errs[i] = p.Create(&volume.CreateRequest{Name: name, Options: opts[i]})
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// Two hosts creating one name at once with different sizes: one makes it,
// the other is told the volume exists and differs, every time; never two
// successes with one host holding a volume of the wrong size.
func TestConcurrentCreatesWithDifferentOptions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := t.TempDir()
	hosts := []*Plugin{host(t, ctx, store, "a", false), host(t, ctx, store, "b", false)}
	opts := []map[string]string{{"size": "64MiB"}, {"size": "128MiB"}}
	// A lost race shows once in hundreds of rounds on a busy host.
	for round := range 50 {
		name := fmt.Sprintf("race%d", round)
		errs := createAtOnce(hosts, name, opts)
		var ok []int
		for i, err := range errs {
			switch {
			case err == nil:
				ok = append(ok, i)
			case !strings.Contains(err.Error(), "exists and differs"):
				t.Errorf("%s: host %d was told %q, want an error saying the volume exists and differs", name, i, err)
			}
		}
		if len(ok) != 1 {
			t.Errorf("%s: %d of 2 creates succeeded (%v), want exactly one", name, len(ok), errs)
			continue
		}
		got, err := hosts[ok[0]].Get(&volume.GetRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]float64{0: 0.0625, 1: 0.125}[ok[0]]
		if size := got.Volume.Status["size"]; size != want {
			t.Errorf("%s: the winner's volume is %v GB, it asked for %v", name, size, want)
		}
	}
}

// With the same options, both creates succeed: it is one volume either way.
func TestConcurrentCreatesWithSameOptions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := t.TempDir()
	hosts := []*Plugin{host(t, ctx, store, "a", false), host(t, ctx, store, "b", false)}
	opts := []map[string]string{{"size": "64MiB"}, {"size": "64MiB"}}
	for round := range 10 {
		name := fmt.Sprintf("same%d", round)
		for i, err := range createAtOnce(hosts, name, opts) {
			if err != nil {
				t.Errorf("%s: host %d: %v", name, i, err)
			}
		}
	}
	imgs, _ := filepath.Glob(filepath.Join(store, "volumes", "*.img"))
	if len(imgs) != 10 {
		t.Errorf("store holds %d images, want 10", len(imgs))
	}
}
