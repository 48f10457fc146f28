package manager

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmanager "sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/scim-operator/scim-operator/internal/testenv"
)

// An event a controller records while the manager stops it is written: the manager runs
// its events until every controller has stopped (controller-runtime stops the runnables
// without leader election, where an added broadcaster would sit, before the controllers).
func TestEventsRecordedWhileControllersStopAreWritten(t *testing.T) {
	env := testenv.New()
	cfg, err := testenv.Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	m, err := New(cfg, Options{MetricsAddr: "0", ProbeAddr: "0", ScimAddr: "127.0.0.1:0", ScimInsecureHTTP: true,
		SkipControllerNameValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(cfg, client.Options{Scheme: m.GetScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "events-"}}
	if err := direct.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "alice"}}
	if err := direct.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	rec := m.events.NewRecorder("test-controller")
	started := make(chan struct{})
	// like a controller: it needs the leader (a Runnable that does not say), and records as
	// it stops, a moment after its context ended
	if err := m.Add(ctrlmanager.RunnableFunc(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond)
		rec.Eventf(cm, nil, corev1.EventTypeNormal, "Stopped", "Stop", "recorded while stopping")
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var l eventsv1.EventList
	if err := direct.List(t.Context(), &l, client.InNamespace(ns.Name)); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].Reason != "Stopped" {
		t.Fatalf("events once Start returned: %+v, want the one recorded while stopping", l.Items)
	}
}
