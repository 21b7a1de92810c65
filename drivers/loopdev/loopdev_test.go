package loopdev

import "testing"

// BenchmarkBound times the scan every Mount and Unmount makes, over
// whatever loop devices this host has.
func BenchmarkBound(b *testing.B) {
	for b.Loop() {
		if _, err := Bound("rexray:bench"); err != nil {
			b.Fatal(err)
		}
	}
}
