package main

import "testing"

func TestMedianInterval(t *testing.T) {
	if lo, hi := medianInterval([]float64{1.2, 1.2, 1.2}); lo != 1.2 || hi != 1.2 {
		t.Errorf("constant samples: [%v, %v], want [1.2, 1.2]", lo, hi)
	}
	// 1.00, 1.01, ..., 1.20: the median is 1.10, and 21 samples cannot pin
	// it to better than a few hundredths.
	var xs []float64
	for i := range 21 {
		xs = append(xs, 1+float64(i)/100)
	}
	lo, hi := medianInterval(xs)
	if !(lo < 1.10 && hi > 1.10) || lo < 1.03 || hi > 1.17 {
		t.Errorf("interval [%v, %v] for a median of 1.10 over 21 spread samples", lo, hi)
	}
	if lo2, hi2 := medianInterval(xs); lo2 != lo || hi2 != hi {
		t.Error("the same samples gave another interval: the report is not reproducible")
	}
}
