package recorder

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
)

// sink is discard as client-go's EventSink.
type sink struct{ discard }

func (s sink) Create(ctx context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	return ev, s.discard.Create(ctx, ev)
}
func (s sink) Update(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) { return ev, nil }
func (s sink) Patch(ctx context.Context, ev *eventsv1.Event, p []byte) (*eventsv1.Event, error) {
	return ev, s.discard.Patch(ctx, ev, p)
}

// BenchmarkHeldEvents is the heap a recorder still holds once it has written n distinct
// events (one a member, as a full sync makes them), in bytes an event:
//
//	go test ./internal/recorder -run '^$' -bench BenchmarkHeldEvents -benchtime 1x
//
// client-go's broadcaster keeps each for six to twelve minutes; this package keeps at most
// seriesKeys.
func BenchmarkHeldEvents(b *testing.B) {
	const n = 20_000
	for _, name := range []string{"client-go", "recorder"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				ctx, cancel := context.WithCancel(context.Background())
				before := liveHeap()
				var rec events.EventRecorder
				switch name {
				case "client-go":
					cast := events.NewBroadcaster(sink{})
					if err := cast.StartRecordingToSinkWithContext(ctx); err != nil {
						b.Fatal(err)
					}
					rec = cast.NewRecorder(clientgoscheme.Scheme, "orgmember-controller")
				default:
					bc := New(discard{}, clientgoscheme.Scheme)
					go func() { _ = bc.Start(ctx) }()
					rec = bc.NewRecorder("orgmember-controller")
				}
				start := written.Load()
				for i := range n {
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a",
						Name: fmt.Sprintf("acme-user%06d-example-com", i), UID: "6f1c2d3e-0000-4000-8000-000000000000"}}
					rec.Eventf(cm, nil, corev1.EventTypeNormal, "Provisioned", "Provision",
						"user%06d@example.com joined organization acme as member", i)
					if i%500 == 499 { // both drop past a queue of 1,000: keep to the writer's pace
						for written.Load()-start < int64(i+1) {
							time.Sleep(time.Millisecond)
						}
					}
				}
				for written.Load()-start < n {
					time.Sleep(time.Millisecond)
				}
				after := liveHeap()
				b.ReportMetric(float64(after-before)/n, "B/event")
				runtime.KeepAlive(rec)
				cancel()
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
