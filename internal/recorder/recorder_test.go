package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// direct is the package's API server (envtest), as its admin; nil in -short runs.
var direct client.Client

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	env := testenv.New()
	env.CRDDirectoryPaths = nil
	cfg, err := testenv.Start(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		os.Exit(1)
	}
	direct, err = client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// subject is a ConfigMap in a namespace of its own, the object the test's events are about.
func subject(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "events-"}}
	if err := direct.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "alice"}}
	if err := direct.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	return cm
}

// run starts b until the test ends.
func run(t *testing.T, b *Broadcaster) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// eventsOf lists the events in ns, waiting until want(list) holds (or failing after 10 s).
func eventsOf(t *testing.T, ns string, what string, want func([]eventsv1.Event) bool) []eventsv1.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var l eventsv1.EventList
		if err := direct.List(t.Context(), &l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if want(l.Items) {
			return l.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, not %s: %+v", what, l.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(n int) func([]eventsv1.Event) bool {
	return func(l []eventsv1.Event) bool { return len(l) == n }
}

// An event reaches the API server as client-go's recorder writes it: the same fields, the
// object's reference, the reporter and its instance.
func TestAnEventIsWrittenAsClientGoWritesIt(t *testing.T) {
	cm := subject(t)
	b := New(Client{direct}, clientgoscheme.Scheme)
	run(t, b)
	b.NewRecorder("orgmember-controller").Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Provision",
		"%s joined organization %s", "alice", "acme")
	ev := eventsOf(t, cm.Namespace, "one event", count(1))[0]
	host, _ := os.Hostname()
	if ev.Reason != "Provisioned" || ev.Action != "Provision" || ev.Type != corev1.EventTypeNormal ||
		ev.Note != "alice joined organization acme" || ev.ReportingController != "orgmember-controller" ||
		ev.ReportingInstance != "orgmember-controller-"+host || ev.Series != nil || ev.EventTime.IsZero() {
		t.Fatalf("event: %+v", ev)
	}
	if r := ev.Regarding; r.Kind != "ConfigMap" || r.APIVersion != "v1" || r.Name != "alice" ||
		r.Namespace != cm.Namespace || r.UID != cm.UID {
		t.Fatalf("regarding: %+v", r)
	}
	if !strings.HasPrefix(ev.Name, "alice.") {
		t.Fatalf("name %q", ev.Name)
	}
}

// Repeats of an event within seriesWindow of the last one are one object whose series
// counts them; a repeat after the window starts a new event.
func TestRepeatsJoinOneSeries(t *testing.T) {
	cm := subject(t)
	clk := clocktesting.NewFakeClock(time.Now())
	b := New(Client{direct}, clientgoscheme.Scheme, WithClock(clk), WithFlushInterval(20*time.Millisecond))
	run(t, b)
	rec := b.NewRecorder("orgmember-controller")
	fail := func() {
		rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "the backend answered %d", 503)
	}
	for range 5 {
		fail()
		clk.Step(time.Minute)
	}
	ev := eventsOf(t, cm.Namespace, "one event counting 5", func(l []eventsv1.Event) bool {
		return len(l) == 1 && l[0].Series != nil && l[0].Series.Count == 5
	})[0]
	if !ev.Series.LastObservedTime.Time.Equal(clk.Now().Add(-time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("series last observed %v, want %v", ev.Series.LastObservedTime, clk.Now().Add(-time.Minute))
	}
	clk.Step(seriesWindow)
	fail()
	l := eventsOf(t, cm.Namespace, "a second event after the window", count(2))
	for _, e := range l {
		if e.Name != ev.Name && e.Series != nil {
			t.Fatalf("the event after the window is a series: %+v", e)
		}
		if e.Name == ev.Name && (e.Series == nil || e.Series.Count != 5) {
			t.Fatalf("the first series changed: %+v", e)
		}
	}
}

// A series whose first event is gone (dropped, or expired by the API server) is written as
// a new event that carries its count.
func TestACountWhoseEventIsGoneIsANewEvent(t *testing.T) {
	cm := subject(t)
	b := New(Client{direct}, clientgoscheme.Scheme)
	run(t, b)
	rec := b.NewRecorder("orgmember-controller")
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	first := eventsOf(t, cm.Namespace, "one event", count(1))[0]
	if err := direct.Delete(t.Context(), &first); err != nil {
		t.Fatal(err)
	}
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	eventsOf(t, cm.Namespace, "one new event counting 2", func(l []eventsv1.Event) bool {
		return len(l) == 1 && l[0].Name != first.Name && l[0].Series != nil && l[0].Series.Count == 2 &&
			l[0].Note == "down"
	})
}

// A note longer than events.k8s.io's 1 KiB is cut at a character's edge, not refused.
func TestALongNoteIsCut(t *testing.T) {
	cm := subject(t)
	b := New(Client{direct}, clientgoscheme.Scheme)
	run(t, b)
	note := "x" + strings.Repeat("é", maxNoteBytes) // the 1024th byte is the first half of an é
	b.NewRecorder("orgmember-controller").Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "%s", note)
	ev := eventsOf(t, cm.Namespace, "one event", count(1))[0]
	if len(ev.Note) != maxNoteBytes-1 || !utf8.ValidString(ev.Note) || !strings.HasPrefix(note, ev.Note) {
		t.Fatalf("note of %d bytes, valid %v", len(ev.Note), utf8.ValidString(ev.Note))
	}
}

// flaky fails the first n writes with err, then writes through.
type flaky struct {
	Writer
	mu  sync.Mutex
	n   int
	err error
}

func (f *flaky) Create(ctx context.Context, ev *eventsv1.Event) error {
	f.mu.Lock()
	if f.n > 0 {
		f.n--
		f.mu.Unlock()
		return f.err
	}
	f.mu.Unlock()
	return f.Writer.Create(ctx, ev)
}

// A write the API server cannot take for the moment is tried again; one it refuses is not,
// and is counted as dropped.
func TestWritesAreRetriedOnlyWhenALaterTryCanSucceed(t *testing.T) {
	gr := schema.GroupResource{Group: "events.k8s.io", Resource: "events"}
	for _, c := range []struct {
		name    string
		err     error
		written bool
	}{
		{"unavailable", apierrors.NewServiceUnavailable("busy"), true},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"unreachable", errors.New("connection refused"), true},
		{"forbidden", apierrors.NewForbidden(gr, "", errors.New("no")), false},
		{"invalid", apierrors.NewBadRequest("bad"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cm := subject(t)
			b := New(&flaky{Writer: Client{direct}, n: 2, err: c.err}, clientgoscheme.Scheme, WithRetryWait(time.Millisecond))
			run(t, b)
			dropped := testutil.ToFloat64(metrics.EventsDropped)
			b.NewRecorder("orgmember-controller").Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Provision", "alice")
			if c.written {
				eventsOf(t, cm.Namespace, "one event", count(1))
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for testutil.ToFloat64(metrics.EventsDropped) != dropped+1 {
				if time.Now().After(deadline) {
					t.Fatal("the refused event was not counted as dropped")
				}
				time.Sleep(10 * time.Millisecond)
			}
			var l eventsv1.EventList
			if err := direct.List(t.Context(), &l, client.InNamespace(cm.Namespace)); err != nil || len(l.Items) != 0 {
				t.Fatalf("refused once, yet written: %v %+v", err, l.Items)
			}
		})
	}
}

// However many events come while the API server lags, at most queueLen wait (the rest are
// dropped and counted) and at most seriesKeys are remembered for their series.
func TestMemoryIsBounded(t *testing.T) {
	b := New(Client{direct}, clientgoscheme.Scheme) // never started: nothing is written
	rec := b.NewRecorder("orgmember-controller")
	dropped := testutil.ToFloat64(metrics.EventsDropped)
	n := seriesKeys + 500
	for i := range n {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: fmt.Sprintf("u%d", i)}}
		rec.Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Provision", "u%d joined", i)
	}
	if queued(b) != queueLen {
		t.Fatalf("%d events wait, want %d", queued(b), queueLen)
	}
	if got := testutil.ToFloat64(metrics.EventsDropped) - dropped; got != float64(n-queueLen) {
		t.Fatalf("%v dropped, want %d", got, n-queueLen)
	}
	if b.series.Len() != seriesKeys {
		t.Fatalf("%d series remembered, want %d", b.series.Len(), seriesKeys)
	}
}

// A series pushed out of the memory by newer events has its grown count written first.
func TestAnEvictedSeriesWritesItsCount(t *testing.T) {
	b := New(Client{direct}, clientgoscheme.Scheme)
	rec := b.NewRecorder("orgmember-controller")
	first := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "first"}}
	for range 3 {
		rec.Eventf(first, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	}
	for i := range seriesKeys {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: fmt.Sprintf("u%d", i)}}
		rec.Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Provision", "u%d", i)
		for _, q := range b.queues {
			if len(q) == cap(q) {
				<-q // a writer keeping up, without an API server
			}
		}
	}
	var counts []int32
	for _, q := range b.queues {
		for len(q) > 0 {
			if w := <-q; w.count && w.ev.Regarding.Name == "first" {
				counts = append(counts, w.ev.Series.Count)
			}
		}
	}
	// The first's count of 2 was queued when the series started, and may have been drained
	// above; its final 3 must be the last word.
	if len(counts) == 0 || counts[len(counts)-1] != 3 {
		t.Fatalf("counts of the evicted series queued: %v, want the last to be 3", counts)
	}
}

// queued is how many writes wait.
func queued(b *Broadcaster) int {
	n := 0
	for _, q := range b.queues {
		n += len(q)
	}
	return n
}

var written atomic.Int64

// discard is a Writer (and a client-go EventSink) that writes nowhere.
type discard struct{}

func (discard) Create(context.Context, *eventsv1.Event) error { written.Add(1); return nil }
func (discard) Patch(context.Context, *eventsv1.Event, []byte) error {
	written.Add(1)
	return nil
}

// blocking holds every create until release is closed, counting how many it holds at once.
type blocking struct {
	release   chan struct{}
	mu        sync.Mutex
	now, most int
}

func (w *blocking) Create(ctx context.Context, _ *eventsv1.Event) error {
	w.mu.Lock()
	w.now++
	w.most = max(w.most, w.now)
	w.mu.Unlock()
	select {
	case <-w.release:
	case <-ctx.Done():
	}
	w.mu.Lock()
	w.now--
	w.mu.Unlock()
	return nil
}

func (w *blocking) Patch(context.Context, *eventsv1.Event, []byte) error { return nil }

// Events about different objects are written by every writer at once, so a slow API server
// does not hold the events of a full sync to one write at a time.
func TestWritersWriteAtOnce(t *testing.T) {
	w := &blocking{release: make(chan struct{})}
	b := New(w, clientgoscheme.Scheme)
	run(t, b)
	t.Cleanup(func() { close(w.release) })
	rec := b.NewRecorder("orgmember-controller")
	for i := range 200 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: fmt.Sprintf("u%d", i)}}
		rec.Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Provision", "u%d", i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		most := w.most
		w.mu.Unlock()
		if most == writers {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("at most %d writes at once, want %d", most, writers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
