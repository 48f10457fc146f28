package controllers

import (
	"testing"
	"time"
)

func TestJitterStaysWithinTenPercent(t *testing.T) {
	d := 10 * time.Minute
	lo, hi := d, time.Duration(0)
	for range 2000 {
		j := jitter(d)
		if j < 9*time.Minute || j > 11*time.Minute {
			t.Fatalf("jitter(%s) = %s, outside ±10%%", d, j)
		}
		lo, hi = min(lo, j), max(hi, j)
	}
	if hi-lo < time.Minute {
		t.Fatalf("jitter spreads only %s over 2000 draws", hi-lo)
	}
	if jitter(0) != 0 {
		t.Fatal("jitter(0) must be 0")
	}
}

func TestTeamName(t *testing.T) {
	for in, want := range map[string]string{
		"acme:devs":     "devs",
		"other:ops":     "ops",
		"plain":         "plain",
		" acme : qa ":   "qa",
		"acme:":         "acme:",
		"a:b:c":         "b:c",
		"no-colon-team": "no-colon-team",
	} {
		if got := TeamName(in); got != want {
			t.Errorf("TeamName(%q) = %q, want %q", in, got, want)
		}
	}
}
