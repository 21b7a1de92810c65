package plugin

import (
	"fmt"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

// BenchmarkList10k measures List over a catalogue of 10,000 volumes, as
// dockerd calls it for `docker volume ls`.
func BenchmarkList10k(b *testing.B) {
	r := newRig(b)
	vols := make([]drivers.Volume, 10000)
	for i := range vols {
		vols[i] = drivers.Volume{Name: fmt.Sprintf("n%05d", i), Size: 1 << 30, Meta: drivers.Meta{FSType: "ext4", CreatedAt: time.Now()}}
	}
	if err := r.st.ReplaceVolumes(vols); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.p.List(); err != nil {
			b.Fatal(err)
		}
	}
}
