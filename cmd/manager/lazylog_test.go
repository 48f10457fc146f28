package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	uzap "go.uber.org/zap"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// TestLazyLoggerWritesWhatZapWrites: the same calls through the lazy logger and through zap
// itself write the same lines (names, values in order, the caller's file), apart from the
// time stamp.
func TestLazyLoggerWritesWhatZapWrites(t *testing.T) {
	write := func(l logr.Logger) {
		r := l.WithName("controller").WithValues("controller", "orgmember", "n", 1).WithName("sub").WithValues("reconcileID", "abc")
		r.Info("plan", "steps", []string{"ensure"})
		r.V(1).Info("not written")
		r.Error(errors.New("boom"), "failed", "attempt", 2)
	}
	lines := func(lazyOn bool) []map[string]any {
		var buf bytes.Buffer
		l := zap.New(zap.WriteTo(&buf), zap.RawZapOpts(uzap.AddCaller()))
		if lazyOn {
			l = lazy(l)
		}
		write(l)
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			m := map[string]any{}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			delete(m, "ts")
			delete(m, "stacktrace")
			out = append(out, m)
		}
		return out
	}
	plain, lz := lines(false), lines(true)
	if len(plain) != 2 {
		t.Fatalf("zap wrote %d lines, want 2: %v", len(plain), plain)
	}
	if !reflect.DeepEqual(plain, lz) {
		t.Errorf("lazy logger wrote\n%v\nzap wrote\n%v", lz, plain)
	}
	if c, _ := lz[0]["caller"].(string); !strings.HasPrefix(c, "manager/lazylog_test.go:") {
		t.Errorf("caller %q, want this test file", lz[0]["caller"])
	}
}

// countingSink counts WithValues calls that reach it.
type countingSink struct {
	logr.LogSink
	withValues *int
}

func (c countingSink) WithValues(kv ...any) logr.LogSink {
	*c.withValues++
	return countingSink{c.LogSink.WithValues(kv...), c.withValues}
}

// TestLazyLoggerDefersValues: values given to a logger that writes nothing never reach the
// sink (what a reconcile's logger costs when it logs nothing).
func TestLazyLoggerDefersValues(t *testing.T) {
	n := 0
	base := logr.New(countingSink{zap.New(zap.WriteTo(&bytes.Buffer{})).GetSink(), &n})
	l := lazy(base).WithValues("controller", "orgmember").WithValues("reconcileID", "x")
	l.V(1).Info("disabled")
	if n != 0 {
		t.Fatalf("%d WithValues reached the sink before anything was written", n)
	}
	l.Info("written")
	if n != 2 {
		t.Errorf("%d WithValues reached the sink for one written line, want 2", n)
	}
}
