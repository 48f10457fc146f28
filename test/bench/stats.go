package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
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

// medianRun measures f runs times and returns the run whose p50 is the median (the lower
// one of an even count), so that a row's p50 and p99 are one run's, with every run's p50
// in the order measured.
func medianRun(runs int, f func() (sample, error)) (sample, []time.Duration, error) {
	runs = max(1, runs)
	all := make([]sample, 0, runs)
	p50s := make([]time.Duration, 0, runs)
	for range runs {
		s, err := f()
		if err != nil {
			return nil, nil, err
		}
		all = append(all, s)
		p50s = append(p50s, s.q(0.5))
	}
	slices.SortStableFunc(all, func(a, b sample) int { return cmp.Compare(a.q(0.5), b.q(0.5)) })
	return all[(len(all)-1)/2], p50s, nil
}

// runsWords is "; p50 of 3 runs: 1.6, 1.8, 2.1 ms" (in the order measured), or "" for one run.
func runsWords(p50s []time.Duration) string {
	if len(p50s) < 2 {
		return ""
	}
	parts := make([]string, len(p50s))
	for i, d := range p50s {
		parts[i] = fmt.Sprintf("%.2f", ms(d))
	}
	return fmt.Sprintf("; p50 of %d runs: %s ms", len(p50s), strings.Join(parts, ", "))
}

// roundsWords is "; 3 rounds: 0.71, 0.80, 0.77" (in the order run), or "" for one round.
func roundsWords(ratios []float64) string {
	if len(ratios) < 2 {
		return ""
	}
	parts := make([]string, len(ratios))
	for i, r := range ratios {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return fmt.Sprintf("; %d rounds: %s", len(ratios), strings.Join(parts, ", "))
}

func total(m map[string]served) float64 {
	var n float64
	for _, v := range m {
		n += v.n
	}
	return n
}

// requestWords lists the kinds of requests (apiRequests) by how many there were per
// create, most first, down to 0.05 a create, each with the API server's mean time for one:
// "POST orgmembers 1.00 (6.1 ms), GET orgnameclaims 1.00 (1.2 ms)".
func requestWords(requests map[string]served, creates float64) string {
	keys := make([]string, 0, len(requests))
	for k, v := range requests {
		if v.n/creates >= 0.05 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if requests[keys[i]].n != requests[keys[j]].n {
			return requests[keys[i]].n > requests[keys[j]].n
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.2f (%.1f ms)", k, requests[k].n/creates, 1000*requests[k].mean())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// addServed adds to sum, by kind, what was served between two readings (after less
// before), and returns it.
func addServed(sum, before, after map[string]served) map[string]served {
	if sum == nil {
		sum = map[string]served{}
	}
	for k, v := range after {
		r := sum[k]
		r.n += v.n - before[k].n
		r.timed += v.timed - before[k].timed
		r.seconds += v.seconds - before[k].seconds
		sum[k] = r
	}
	return sum
}

// checksWords says the consistency checks (consistencyChecks) that listed between two
// readings: how many, about how many objects they listed from etcd (each resource's
// count at the later reading), and by resource.
func checksWords(before, after checks) (n, objects float64, words string) {
	if !after.exposed {
		return 0, 0, "none (the API server shows no " + checksMetric + ": no check has run since it started, or its DetectCacheInconsistency feature is off)"
	}
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(after.listed)) {
		if d := after.listed[r] - before.listed[r]; d > 0 {
			n += d
			o := max(0, after.objects[r]) // (-1: the API server could not count them)
			objects += d * o
			parts = append(parts, fmt.Sprintf("%s %.0f (%.0f objects)", r, d, o))
		}
	}
	if n == 0 {
		return 0, 0, "none"
	}
	return n, objects, fmt.Sprintf("%.0f, listing about %.0f objects from etcd: %s", n, objects, strings.Join(parts, ", "))
}

// mean is the mean time for one request (or wait) of the kind, in seconds (0 for none).
func (r served) mean() float64 {
	if r.timed == 0 {
		return 0
	}
	return r.seconds / r.timed
}

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
