package main

import (
	"slices"
	"testing"
	"time"
)

// medianRun returns the sample whose p50 is the median (the lower middle one for an even
// count), and every sample's p50 in the order measured.
func TestMedianRun(t *testing.T) {
	ms := func(n int) sample { return sample{time.Duration(n) * time.Millisecond} }
	for _, tc := range []struct {
		p50s []int
		want int
	}{{[]int{3, 1, 2}, 2}, {[]int{5}, 5}, {[]int{4, 1, 3, 2}, 2}} {
		i := 0
		got, p50s, err := medianRun(len(tc.p50s), func() (sample, error) { i++; return ms(tc.p50s[i-1]), nil })
		if err != nil || got.q(0.5) != time.Duration(tc.want)*time.Millisecond {
			t.Errorf("medianRun(%v) = p50 %s, %v; want %d ms", tc.p50s, got.q(0.5), err, tc.want)
		}
		var order []int
		for _, d := range p50s {
			order = append(order, int(d/time.Millisecond))
		}
		if !slices.Equal(order, tc.p50s) {
			t.Errorf("medianRun(%v) p50s = %v, want them in the order measured", tc.p50s, order)
		}
	}
}
