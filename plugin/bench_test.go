//go:build integration

package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

// BenchmarkList10k measures List over a store of 10,000 volumes, as
// dockerd calls it for `docker volume ls`: the store's listing merged with
// this host's ledger. Changed lists a store folder that changes before
// every List, so each reads the whole folder.
func BenchmarkList10k(b *testing.B) {
	r := newRig(b)
	for i := range 10000 {
		if _, err := r.drv.Create(context.Background(), fmt.Sprintf("n%05d", i), drivers.CreateOptions{Size: 1 << 30, FSType: "ext4"}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Unchanged", func(b *testing.B) {
		// A listing is kept once read a second after the folder's
		// times were first seen.
		r.p.List()
		time.Sleep(1100 * time.Millisecond)
		benchList(b, r, nil)
	})
	b.Run("Changed", func(b *testing.B) {
		flip := filepath.Join(r.dir, "store", "volumes", "flip")
		benchList(b, r, func() {
			if err := os.WriteFile(flip, nil, 0o600); err != nil {
				b.Fatal(err)
			}
			os.Remove(flip)
		})
	})
}

func benchList(b *testing.B, r *rig, change func()) {
	for b.Loop() {
		if change != nil {
			b.StopTimer()
			change()
			b.StartTimer()
		}
		res, err := r.p.List()
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Volumes) != 10000 {
			b.Fatalf("listed %d volumes", len(res.Volumes))
		}
	}
}
