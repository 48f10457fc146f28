package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
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
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// direct is the package's API server (envtest), as its admin.
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
		// no later try builds the request
		{"not registered", fmt.Errorf("creating: %w", k8sruntime.NewNotRegisteredErrForKind("test", eventsv1.SchemeGroupVersion.WithKind("Event"))), false},
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

// A series whose first event is gone (its create was dropped, or the API server expired
// it) is written again under its name with its count, so that later counts patch it
// rather than make an event each (review 90, F1).
func TestAGoneEventIsWrittenAgainOnce(t *testing.T) {
	cm := subject(t)
	b := New(Client{direct}, clientgoscheme.Scheme, WithFlushInterval(20*time.Millisecond))
	run(t, b)
	rec := b.NewRecorder("orgmember-controller")
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	first := eventsOf(t, cm.Namespace, "one event", count(1))[0]
	if err := direct.Delete(t.Context(), &first); err != nil {
		t.Fatal(err)
	}
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	eventsOf(t, cm.Namespace, "the event again, counting 2", func(l []eventsv1.Event) bool {
		return len(l) == 1 && l[0].Series != nil && l[0].Series.Count == 2
	})
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	eventsOf(t, cm.Namespace, "still one event, counting 3", func(l []eventsv1.Event) bool {
		return len(l) == 1 && l[0].Series != nil && l[0].Series.Count == 3
	})
}

// Review 90, F3: a count that found its queue full stays to be written by a later flush.
func TestACountThatFoundItsQueueFullIsWrittenLater(t *testing.T) {
	b := New(Client{direct}, clientgoscheme.Scheme) // never started: the test is the writer
	rec := b.NewRecorder("orgmember-controller")
	const n = 2000
	drain := func() map[string]int32 {
		got := map[string]int32{}
		for _, q := range b.queues {
			for len(q) > 0 {
				if w := <-q; w.count {
					got[w.ev.Regarding.Name] = w.ev.Series.Count
				}
			}
		}
		return got
	}
	for round := range 3 {
		for i := range n {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: fmt.Sprintf("u%d", i)}}
			rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
			if round < 2 && i%100 == 99 {
				drain() // the creates and the counts of 2 keep up
			}
		}
	}
	last := map[string]int32{}
	for range 20 { // a flush a minute, twenty minutes
		b.flushGrown()
		for k, v := range drain() {
			last[k] = v
		}
	}
	for i := range n {
		if c := last[fmt.Sprintf("u%d", i)]; c != 3 {
			t.Fatalf("u%d: last count written %d, want 3 (%d of %d right)", i, c, countOf(last, 3), n)
		}
	}
}

func countOf(m map[string]int32, v int32) int {
	n := 0
	for _, c := range m {
		if c == v {
			n++
		}
	}
	return n
}

// timeoutAfterWrite writes, then answers as if the API server had timed out, once.
type timeoutAfterWrite struct {
	Writer
	done atomic.Bool
}

func (w *timeoutAfterWrite) Create(ctx context.Context, ev *eventsv1.Event) error {
	err := w.Writer.Create(ctx, ev)
	if err == nil && !w.done.Swap(true) {
		return apierrors.NewServerTimeout(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "create", 1)
	}
	return err
}

// Review 90, F4: a create retried after a timeout that had written it is not a drop.
func TestARetryThatFindsItsEventWrittenIsNotADrop(t *testing.T) {
	cm := subject(t)
	b := New(&timeoutAfterWrite{Writer: Client{direct}}, clientgoscheme.Scheme, WithRetryWait(time.Millisecond))
	run(t, b)
	dropped := testutil.ToFloat64(metrics.EventsDropped)
	b.NewRecorder("orgmember-controller").Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Provision", "alice")
	eventsOf(t, cm.Namespace, "one event", count(1))
	time.Sleep(200 * time.Millisecond) // the retry's answer
	if got := testutil.ToFloat64(metrics.EventsDropped) - dropped; got != 0 {
		t.Fatalf("%v events counted as dropped", got)
	}
}

// Review 90, F2: what is queued when the broadcaster is stopped is written before Start
// returns, and an event recorded after that is counted as dropped, never silently lost.
func TestStopWritesWhatIsQueuedAndCountsWhatComesAfter(t *testing.T) {
	cm := subject(t)
	b := New(Client{direct}, clientgoscheme.Scheme)
	rec := b.NewRecorder("orgmember-controller")
	for i := range 50 {
		rec.Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", fmt.Sprintf("Provision%d", i), "alice")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before it starts: only the drain writes
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var l eventsv1.EventList
	if err := direct.List(t.Context(), &l, client.InNamespace(cm.Namespace)); err != nil || len(l.Items) != 50 {
		t.Fatalf("after Start returned: %v, %d events, want 50", err, len(l.Items))
	}
	dropped := testutil.ToFloat64(metrics.EventsDropped)
	rec.Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Late", "alice")
	if got := testutil.ToFloat64(metrics.EventsDropped) - dropped; got != 1 {
		t.Fatalf("an event after the stop: %v counted as dropped, want 1", got)
	}
}

// steppingClock gives its times in the order listed, then the last one.
type steppingClock struct {
	clocktesting.FakePassiveClock
	mu    sync.Mutex
	times []time.Time
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.times[0]
	if len(c.times) > 1 {
		c.times = c.times[1:]
	}
	return t
}

// Review 90, F6: a series' last observed time never goes back before its event's time.
func TestASeriesLastObservedIsNeverBeforeItsEvent(t *testing.T) {
	t0 := time.Now()
	clk := &steppingClock{times: []time.Time{t0, t0.Add(-time.Second)}}
	b := New(Client{direct}, clientgoscheme.Scheme, WithClock(clk))
	rec := b.NewRecorder("orgmember-controller")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "alice"}}
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	for _, q := range b.queues {
		for len(q) > 0 {
			if w := <-q; w.count && w.ev.Series.LastObservedTime.Before(&w.ev.EventTime) {
				t.Fatalf("last observed %v before the event's %v", w.ev.Series.LastObservedTime, w.ev.EventTime)
			}
		}
	}
}

// A series that grew since its count was last written, and is superseded by a repeat after
// seriesWindow, has its final count written before the new event.
func TestASupersededSeriesWritesItsFinalCount(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	b := New(Client{direct}, clientgoscheme.Scheme, WithClock(clk)) // never started: the test reads the queues
	rec := b.NewRecorder("orgmember-controller")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "alice"}}
	for range 3 { // the event, its count of 2 at once, a count of 3 left for a flush
		rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	}
	clk.Step(seriesWindow + time.Second)
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Failed", "Sync", "down")
	var got []string
	for _, q := range b.queues {
		for len(q) > 0 {
			if w := <-q; w.count {
				got = append(got, fmt.Sprintf("count %d", w.ev.Series.Count))
			} else {
				got = append(got, "create")
			}
		}
	}
	if want := []string{"create", "count 2", "count 3", "create"}; !slices.Equal(got, want) {
		t.Fatalf("writes queued: %v, want %v", got, want)
	}
}
