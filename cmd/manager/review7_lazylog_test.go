package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// TestReview7LazyLoggerValuesAsOfWithValues (review7): zap encodes a WithValues' values when
// WithValues is called; the lazy sink keeps the caller's kv slice and the values it refers
// to, and encodes them when a line is written. A value changed in between (the variadic
// slice reused, a map or a pointed-to struct updated, as a reconcile does to its object)
// is written as it is at the line, not as it was given: the lines differ from zap's, and
// a value changed by another goroutine while a line is written is a data race that zap
// never had.
func TestReview7LazyLoggerValuesAsOfWithValues(t *testing.T) {
	write := func(l logr.Logger) {
		kv := []any{"phase", "Pending"}
		r := l.WithValues(kv...)
		kv[1] = "Active" // the caller reuses its slice
		// (a map or pointer value changed after WithValues shows its newer contents: a
		// documented difference, lazylog.go; nothing here passes such values)
		r.Info("reconciled")
	}
	line := func(lazyOn bool) map[string]any {
		var buf bytes.Buffer
		l := zap.New(zap.WriteTo(&buf))
		if lazyOn {
			l = lazy(l)
		}
		write(l)
		m := map[string]any{}
		if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &m); err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		delete(m, "ts")
		return m
	}
	plain, lz := line(false), line(true)
	if !reflect.DeepEqual(plain, lz) {
		t.Errorf("lazy logger wrote\n%v\nzap wrote\n%v", lz, plain)
	}
}
