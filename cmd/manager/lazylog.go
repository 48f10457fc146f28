package main

import (
	"slices"

	"github.com/go-logr/logr"
)

// lazySink defers a logger's WithValues and WithName until a line is written with it.
//
// controller-runtime gives every reconcile a logger carrying the controller, the object and
// a reconcile ID (WithValues), and zap encodes those values at once, into a copy of its
// encoder: under make bench -pprof that was a third of everything the manager allocated,
// for lines almost never written (the plan is logged at V(1), off by default). Here the
// values are only remembered, and handed to zap when a line is enabled and written; what is
// written is the same. No library does this for logr (zap's Logger.WithLazy is not reached
// through zapr).
type lazySink struct {
	base logr.LogSink
	ops  []lazyOp
}

// lazyOp is one deferred WithName (name set) or WithValues (kv set).
type lazyOp struct {
	name string
	kv   []any
}

// lazy wraps l's sink. That sink was initialised by l already; it is told of the one
// frame more that Info and Error call it through (the caller's file stays the caller's).
func lazy(l logr.Logger) logr.Logger {
	base := l.GetSink()
	if base == nil {
		return l
	}
	if cd, ok := base.(logr.CallDepthLogSink); ok {
		base = cd.WithCallDepth(1)
	}
	return logr.New(&lazySink{base: base})
}

// Init does nothing: the wrapped sink was initialised by the logger it came from.
func (s *lazySink) Init(logr.RuntimeInfo) {}

func (s *lazySink) Enabled(level int) bool { return s.base.Enabled(level) }

func (s *lazySink) Info(level int, msg string, kv ...any) { s.materialize().Info(level, msg, kv...) }

func (s *lazySink) Error(err error, msg string, kv ...any) { s.materialize().Error(err, msg, kv...) }

// WithValues remembers a copy of the list (a caller may reuse its slice). The values
// themselves are encoded when a line is written: a map or a pointer changed after this call
// would show its newer contents, where zap showed the older. Nothing here or in
// controller-runtime passes such values; pass values, not references, to WithValues.
func (s *lazySink) WithValues(kv ...any) logr.LogSink {
	return &lazySink{base: s.base, ops: append(slices.Clip(s.ops), lazyOp{kv: slices.Clone(kv)})}
}

func (s *lazySink) WithName(name string) logr.LogSink {
	return &lazySink{base: s.base, ops: append(slices.Clip(s.ops), lazyOp{name: name})}
}

// materialize applies the deferred names and values to the wrapped sink, in order.
func (s *lazySink) materialize() logr.LogSink {
	b := s.base
	for _, op := range s.ops {
		if op.kv != nil {
			b = b.WithValues(op.kv...)
		} else {
			b = b.WithName(op.name)
		}
	}
	return b
}

// WithCallDepth passes a caller's extra frames on to the wrapped sink.
func (s *lazySink) WithCallDepth(depth int) logr.LogSink {
	cd, ok := s.base.(logr.CallDepthLogSink)
	if !ok {
		return s
	}
	return &lazySink{base: cd.WithCallDepth(depth), ops: s.ops}
}
