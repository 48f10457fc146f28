package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// A config whose reconciles are slow takes every worker but two (one for the next config
// to come, one spare); another config always gets one; a released slot is taken again.
func TestConfigSlotsKeepAWorkerForOtherConfigs(t *testing.T) {
	slow := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	fast := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "k8s"}}
	s := NewConfigSlots(4)
	var held []func()
	for {
		release, ok := s.Acquire(slow, false)
		if !ok {
			break
		}
		held = append(held, release)
		if len(held) > 4 {
			t.Fatal("one config took more slots than there are workers")
		}
	}
	if len(held) != 2 {
		t.Fatalf("the slow config holds %d of 4 workers, want 2 (one left for the next config, one spare)", len(held))
	}
	release, ok := s.Acquire(fast, false)
	if !ok {
		t.Fatal("another config found no worker while the slow one held its share")
	}
	release()
	release() // a second release changes nothing
	held[0]()
	if _, ok := s.Acquire(slow, false); !ok {
		t.Fatal("a released slot is not taken again")
	}
	if _, ok := NewConfigSlots(1).Acquire(slow, false); !ok {
		t.Fatal("with one worker a config's first reconcile must still run")
	}
	var none *ConfigSlots
	if _, ok := none.Acquire(slow, false); !ok {
		t.Fatal("no slots: always granted")
	}
}

// A config holding its share may still take the spare worker for one revocation at a
// time; then nothing more, and the spare is back once that revocation is done.
func TestConfigSlotsLetOneRevocationThrough(t *testing.T) {
	a := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	b := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "k8s"}}
	s := NewConfigSlots(4)
	for range 2 {
		if _, ok := s.Acquire(a, false); !ok {
			t.Fatal("the config's share was refused")
		}
	}
	if _, ok := s.Acquire(a, false); ok {
		t.Fatal("a third ordinary reconcile took a worker kept for others")
	}
	revoke, ok := s.Acquire(a, true)
	if !ok {
		t.Fatal("a revocation of a config holding its share found no worker: it waits behind the config's own backlog")
	}
	if _, ok := s.Acquire(a, true); ok {
		t.Fatal("a second revocation took another worker")
	}
	revoke()
	if _, ok := s.Acquire(b, false); !ok {
		t.Fatal("the spare worker did not come back for another config")
	}
}

// A worker refused a slot pauses until a slot is given back (here the pause is an hour, so
// only the release can end it), and a second release ends a later pause too.
func TestPauseRefusedEndsWhenASlotIsGivenBack(t *testing.T) {
	a := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	s := NewConfigSlots(4)
	s.pause = time.Hour
	var held []func()
	for {
		release, ok := s.Acquire(a, false)
		if !ok {
			break
		}
		held = append(held, release)
	}
	for _, release := range held {
		done := make(chan struct{})
		go func() {
			s.PauseRefused(context.Background())
			close(done)
		}()
		time.Sleep(10 * time.Millisecond) // let it wait (if it has not, the release below still ends it)
		release()
		<-done // the test's own timeout is the failure if the release does not end the pause
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.PauseRefused(ctx) // a cancelled context ends it too
	var none *ConfigSlots
	none.PauseRefused(context.Background())
}
