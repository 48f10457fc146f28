package main

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// sample is a set of latencies.
type sample []time.Duration

func (s sample) sorted() sample {
	c := append(sample(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}

// q is the q-quantile (nearest rank) of s.
func (s sample) q(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	i := int(q*float64(len(c))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(c) {
		i = len(c) - 1
	}
	return c[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMS(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", ms(d))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms(d))
	default:
		return fmt.Sprintf("%.0f ms", ms(d))
	}
}

func p50p99(s sample) string { return fmt.Sprintf("p50 %s, p99 %s", fmtMS(s.q(0.5)), fmtMS(s.q(0.99))) }

// timed runs f n times sequentially and returns each call's latency.
func timed(n int, f func(i int) error) (sample, error) {
	out := make(sample, 0, n)
	for i := range n {
		t0 := time.Now()
		if err := f(i); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func bytesIEC(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// median is the median of xs (the mean of the middle two for an even count), with the
// smallest and the largest.
func median(xs []float64) (mid, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	c := slices.Sorted(slices.Values(xs))
	n := len(c)
	mid = c[n/2]
	if n%2 == 0 {
		mid = (c[n/2-1] + c[n/2]) / 2
	}
	return mid, c[0], c[n-1]
}
