package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

// catalogue10k is a ledger whose catalogue holds 10,000 volumes as a
// store of that many leaves it after a start, one of them Swarm's.
func catalogue10k(b *testing.B) (*Store, []drivers.Volume) {
	s := open(b, b.TempDir())
	b.Cleanup(func() { s.Close() })
	vols := make([]drivers.Volume, 10000)
	for i := range vols {
		vols[i] = drivers.Volume{Name: fmt.Sprintf("n%05d", i), Size: 64 << 20, Fields: map[string]string{"image": fmt.Sprintf("/store/volumes/n%05d.img", i)},
			Meta: drivers.Meta{FSType: "ext4", CreatedAt: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), Unformatted: true, Cluster: i == 4242}}
	}
	if err := s.ReplaceVolumes(vols); err != nil {
		b.Fatal(err)
	}
	return s, vols
}

// BenchmarkClusterVolumes10k is what every List asks the catalogue.
func BenchmarkClusterVolumes10k(b *testing.B) {
	s, _ := catalogue10k(b)
	for b.Loop() {
		if got, err := s.ClusterVolumes(); err != nil || len(got) != 1 {
			b.Fatalf("ClusterVolumes = %v, %v", got, err)
		}
	}
}

// BenchmarkReplaceVolumes10k is Restore's catalogue save over a store
// that did not change since the last start.
func BenchmarkReplaceVolumes10k(b *testing.B) {
	s, vols := catalogue10k(b)
	for b.Loop() {
		if err := s.ReplaceVolumes(vols); err != nil {
			b.Fatal(err)
		}
	}
}
