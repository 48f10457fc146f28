// Package recorder writes the controllers' Kubernetes events (events.k8s.io/v1) in bounded
// memory.
//
// client-go's events broadcaster (k8s.io/client-go/tools/events, behind the manager's
// GetEventRecorder) keeps every event it wrote in a series cache for six to twelve
// minutes, and writes each one from a goroutine of its own. An IdP that provisions a whole
// organization makes one event a member, so that cache grows with the organization: at
// 100,000 members about 90 MB of the manager's 475 MB live heap were events
// (make bench's heap profile at 100,000 members: events.(*Event).DeepCopy and recordToSink). The
// legacy broadcaster (tools/record) is bounded, but its recorder takes no action (the
// events name theirs: Provision, Repair, Deactivate) and writes core/v1 events, which
// `kubectl scim explain` does not read. So this package keeps client-go's event shape
// and its series (a repeat of an event joins the first one's count instead of making a new
// object) with client-go's legacy bounds:
//
//   - at most queueLen events wait to be written, by writers goroutines, each with a queue
//     of its own for its share of the events' keys (client-go starts a goroutine an
//     event, so a full sync could start thousands); an event whose writer's queue is full
//     is dropped and counted (scim_operator_events_dropped_total), as the legacy
//     broadcaster drops when its queue of 1,000 is full;
//   - at most seriesKeys events are remembered for their series (an LRU, as the legacy
//     correlator's 4,096), each for seriesWindow after its last occurrence.
//
// Events are best effort, here as in Kubernetes: what they say is also in the objects'
// status.
package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/scim-operator/scim-operator/internal/metrics"
)

const (
	// queueLen is how many events may wait to be written (tools/record's maxQueuedEvents).
	queueLen = 1000
	// writers write at once, each the events of its share of the keys, so that a series'
	// count is written after its event. One writer at the 19 ms an event POST took during
	// make bench's full sync would write 50 events a second, fewer than the sync's members.
	writers = 8
	// seriesKeys is how many events are remembered for their series (tools/record's
	// LRU correlator).
	seriesKeys = 4096
	// seriesWindow is how long after its last occurrence a repeat still joins an event's
	// series (tools/events' finishTime).
	seriesWindow = 6 * time.Minute
	// flushInterval is how often the counts of series that grew are written: a series is
	// written when it starts (its second occurrence), then at most once a flushInterval.
	flushInterval = time.Minute
	// maxTries and retryWait bound the attempts at one write the API server could not take
	// for the moment (tools/events' maxTriesPerEvent and its sleep).
	maxTries  = 12
	retryWait = 10 * time.Second
	// drainFor bounds the writes after the broadcaster is stopped.
	drainFor = 5 * time.Second
	// maxNoteBytes is events.k8s.io/v1's limit on a note.
	maxNoteBytes = 1024
)

// Writer writes events to the API server; Client is the one the manager uses.
type Writer interface {
	Create(ctx context.Context, ev *eventsv1.Event) error
	Patch(ctx context.Context, ev *eventsv1.Event, mergePatch []byte) error
}

// Client writes events through a controller-runtime client.
type Client struct{ client.Client }

func (c Client) Create(ctx context.Context, ev *eventsv1.Event) error {
	return c.Client.Create(ctx, ev)
}

func (c Client) Patch(ctx context.Context, ev *eventsv1.Event, p []byte) error {
	return c.Client.Patch(ctx, ev, client.RawPatch(types.MergePatchType, p))
}

// Broadcaster queues the events of its Recorders and writes them while it runs (Start).
type Broadcaster struct {
	writer    Writer
	scheme    *runtime.Scheme
	clock     clock.PassiveClock
	instance  string
	retryWait time.Duration
	flush     time.Duration

	seed     maphash.Seed
	queues   [writers]chan write // by the hash of the event's key
	drainFor time.Duration

	mu      sync.Mutex
	stopped bool                 // Start has returned or is draining: nothing more is queued
	series  *lru.Cache           // eventKey -> *series
	dirty   map[eventKey]*series // series whose count grew since it was last written
}

// write is one queued write: an event to create, or a series' count.
type write struct {
	shard int             // the writer of its key
	ev    *eventsv1.Event // a create, or the series' event with its count
	count bool
}

// series is what is remembered of an event for its repeats: with its key, what makes the
// event again (not the event: a third of the memory).
type series struct {
	name, note string
	eventTime  time.Time
	count      int32
	last       time.Time
	written    int32 // the count last queued for writing
}

// eventKey is what makes two events one series (tools/events' getKey).
type eventKey struct {
	eventType, action, reason, controller, instance string
	regarding, related                              corev1.ObjectReference
}

// Option changes a Broadcaster; the tests' knobs.
type Option func(*Broadcaster)

// WithClock sets the clock that stamps events and times series.
func WithClock(c clock.PassiveClock) Option { return func(b *Broadcaster) { b.clock = c } }

// WithRetryWait sets the wait between attempts at a write.
func WithRetryWait(d time.Duration) Option { return func(b *Broadcaster) { b.retryWait = d } }

// WithFlushInterval sets how often grown series are written.
func WithFlushInterval(d time.Duration) Option { return func(b *Broadcaster) { b.flush = d } }

// New returns a Broadcaster that writes through w; objects' references come from scheme.
func New(w Writer, scheme *runtime.Scheme, opts ...Option) *Broadcaster {
	host, _ := os.Hostname()
	b := &Broadcaster{writer: w, scheme: scheme, clock: clock.RealClock{}, instance: host,
		retryWait: retryWait, flush: flushInterval, drainFor: drainFor, seed: maphash.MakeSeed(), dirty: map[eventKey]*series{}}
	for i := range b.queues {
		b.queues[i] = make(chan write, queueLen/writers)
	}
	for _, o := range opts {
		o(b)
	}
	// A series pushed out by newer events has its grown count written first.
	b.series = lru.NewWithEvictionFunc(seriesKeys, func(k lru.Key, v any) {
		if _, ok := b.dirty[k.(eventKey)]; ok {
			delete(b.dirty, k.(eventKey))
			lost(b.enqueueCount(k.(eventKey), v.(*series)))
		}
	})
	return b
}

// Start writes events until ctx ends, then the counts that grew and the writes still
// queued, for at most drainFor, and returns. Events recorded after that are dropped
// (counted). The manager stops it after every controller has stopped (manager.Start), so
// that what they record while they stop is written.
func (b *Broadcaster) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx)) // the writes outlive ctx by the drain
	defer cancel()
	draining := make(chan struct{})
	var wg sync.WaitGroup
	for _, q := range b.queues {
		wg.Go(func() {
			for {
				select {
				case w := <-q:
					b.write(wctx, w)
				case <-draining:
					b.drain(wctx, q)
					return
				}
			}
		})
	}
	tick := time.NewTicker(b.flush)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			b.flushGrown()
			continue
		case <-ctx.Done():
		}
		break
	}
	b.mu.Lock()
	b.flushGrownLocked()
	for k := range b.dirty { // counts that found no room even now
		delete(b.dirty, k)
		lost(false)
	}
	b.stopped = true
	b.mu.Unlock()
	close(draining)
	deadline := time.AfterFunc(b.drainFor, cancel) // a write still failing then is dropped
	defer deadline.Stop()
	wg.Wait()
	return nil
}

// drain writes what q holds.
func (b *Broadcaster) drain(ctx context.Context, q chan write) {
	for {
		select {
		case w := <-q:
			b.write(ctx, w)
		default:
			return
		}
	}
}

// NewRecorder returns a recorder whose events name controller as their reporter.
func (b *Broadcaster) NewRecorder(controller string) events.EventRecorder {
	return &recorder{b: b, controller: controller, instance: truncate(controller+"-"+b.instance, 128)}
}

type recorder struct {
	b                    *Broadcaster
	controller, instance string
}

// Eventf records an event about regarding (and related, which may be nil), as client-go's
// recorder does, except that it never blocks and never holds more than the bounds above.
func (r *recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		logf.Log.WithName("events").Error(nil, "unsupported event type", "type", eventtype, "reason", reason)
		return
	}
	ref, err := reference.GetReference(r.b.scheme, regarding)
	if err != nil {
		logf.Log.WithName("events").Error(err, "no reference to the event's object; the event is not written", "reason", reason)
		return
	}
	var rel *corev1.ObjectReference
	if related != nil {
		if rel, err = reference.GetReference(r.b.scheme, related); err != nil {
			rel = nil
		}
	}
	k := eventKey{eventType: eventtype, action: action, reason: reason, controller: r.controller,
		instance: r.instance, regarding: *ref}
	if rel != nil {
		k.related = *rel
	}
	r.b.record(k, truncate(fmt.Sprintf(note, args...), maxNoteBytes))
}

// toEvent is the event of key k named name.
func (k eventKey) toEvent(name, note string, at time.Time) *eventsv1.Event {
	ns := k.regarding.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: name, Namespace: ns},
		EventTime:           metav1.NewMicroTime(at),
		ReportingController: k.controller,
		ReportingInstance:   k.instance,
		Action:              k.action,
		Reason:              k.reason,
		Regarding:           k.regarding,
		Note:                note,
		Type:                k.eventType,
	}
	if k.related != (corev1.ObjectReference{}) {
		rel := k.related
		ev.Related = &rel
	}
	return ev
}

// eventName is client-go's name of an event about the object named object.
func eventName(object string, at time.Time) string {
	return fmt.Sprintf("%s.%x", object, at.UnixNano())
}

// record queues the event of key k, or counts it in the series of an equal event seen
// within seriesWindow.
func (b *Broadcaster) record(k eventKey, note string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if b.stopped {
		metrics.EventsDropped.Inc()
		return
	}
	if v, ok := b.series.Get(k); ok {
		s := v.(*series)
		if now.Sub(s.last) <= seriesWindow {
			s.count++
			if now.After(s.last) { // recorders race to the lock: time never goes back
				s.last = now
			}
			if s.written >= 2 || !b.enqueueCount(k, s) { // a series starts at once, as client-go's
				b.dirty[k] = s
			}
			return
		}
		delete(b.dirty, k)
		lost(b.enqueueCount(k, s)) // the old series' final count, before it is forgotten
	}
	s := &series{name: eventName(k.regarding.Name, now), note: note, eventTime: now, count: 1, last: now, written: 1}
	b.series.Add(k, s)
	lost(b.enqueue(write{shard: b.shard(k), ev: k.toEvent(s.name, note, now)}))
}

// flushGrown queues the counts of the series that grew since they were last written; one
// whose queue is full stays for the next flush.
func (b *Broadcaster) flushGrown() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushGrownLocked()
}

func (b *Broadcaster) flushGrownLocked() {
	for k, s := range b.dirty {
		if b.enqueueCount(k, s) {
			delete(b.dirty, k)
		}
	}
}

// enqueueCount queues the current count of k's series s (b.mu held), and tells whether
// it is queued (or was already); a count that found its queue full is not marked written.
func (b *Broadcaster) enqueueCount(k eventKey, s *series) bool {
	if s.count == s.written {
		return true
	}
	ev := k.toEvent(s.name, s.note, s.eventTime)
	ev.Series = &eventsv1.EventSeries{Count: s.count, LastObservedTime: metav1.NewMicroTime(s.last)}
	if !b.enqueue(write{shard: b.shard(k), ev: ev, count: true}) {
		return false
	}
	s.written = s.count
	return true
}

// shard is the writer of k's events.
func (b *Broadcaster) shard(k eventKey) int {
	var h maphash.Hash
	h.SetSeed(b.seed)
	for _, s := range []string{k.eventType, k.action, k.reason, k.controller, k.instance,
		string(k.regarding.UID), k.regarding.Namespace, k.regarding.Name, k.related.Name} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return int(h.Sum64() % writers)
}

// enqueue queues w with the writes of its key, and tells whether there was room.
func (b *Broadcaster) enqueue(w write) bool {
	select {
	case b.queues[w.shard] <- w:
		return true
	default:
		return false
	}
}

// lost counts a write that will never be made.
func lost(queued bool) {
	if !queued {
		metrics.EventsDropped.Inc()
	}
}

// write makes one queued write, retrying while the API server cannot take it for the
// moment. A count whose event is gone (it was dropped, or expired) is written as a new
// event carrying the series.
func (b *Broadcaster) write(ctx context.Context, w write) {
	do := func() error { return b.writer.Create(ctx, w.ev.DeepCopy()) }
	if w.count {
		do = func() error {
			p, err := json.Marshal(map[string]any{"series": w.ev.Series})
			if err != nil {
				return err
			}
			err = b.writer.Patch(ctx, w.ev.DeepCopy(), p)
			if apierrors.IsNotFound(err) {
				// The event is gone (its create was dropped, or it expired): write it again
				// under its name, with its count, so later counts find it (as client-go does).
				err = b.writer.Create(ctx, w.ev.DeepCopy())
			}
			return err
		}
	}
	for try := 1; ; try++ {
		err := do()
		if try > 1 && apierrors.IsAlreadyExists(err) {
			err = nil // an earlier try that timed out had written it
		}
		if err == nil || !retryable(err) || try == maxTries {
			if err != nil {
				metrics.EventsDropped.Inc()
				logf.FromContext(ctx).WithName("events").Info("an event was not written",
					"reason", w.ev.Reason, "regarding", w.ev.Regarding.Name, "error", err.Error())
			}
			return
		}
		select {
		case <-ctx.Done():
			metrics.EventsDropped.Inc() // the drain's deadline came first
			return
		case <-time.After(wait.Jitter(b.retryWait, 0.25)):
		}
	}
}

// retryable tells the errors a later attempt may not meet: the API server unreachable,
// overloaded or timing out (tools/events retries nearly every error that is not an API
// status). A scheme that does not know the event's type is not one of them: no try builds
// that request (client-go would retry it, as an unreachable server, for about 2 minutes).
func retryable(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if runtime.IsNotRegisteredError(e) {
			return false
		}
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true
	}
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err)
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
