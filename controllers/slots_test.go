package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// A config whose reconciles are slow takes every worker but one; another config always
// gets that one; a released slot is taken again.
func TestConfigSlotsKeepAWorkerForOtherConfigs(t *testing.T) {
	slow := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	fast := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "k8s"}}
	s := NewConfigSlots(4)
	var held []func()
	for {
		release, ok := s.Acquire(slow)
		if !ok {
			break
		}
		held = append(held, release)
		if len(held) > 4 {
			t.Fatal("one config took more slots than there are workers")
		}
	}
	if len(held) != 3 {
		t.Fatalf("the slow config holds %d of 4 workers, want 3 (one left for the others)", len(held))
	}
	release, ok := s.Acquire(fast)
	if !ok {
		t.Fatal("another config found no worker while the slow one held its share")
	}
	release()
	release() // a second release changes nothing
	held[0]()
	if _, ok := s.Acquire(slow); !ok {
		t.Fatal("a released slot is not taken again")
	}
	if _, ok := NewConfigSlots(1).Acquire(slow); !ok {
		t.Fatal("with one worker a config's first reconcile must still run")
	}
	var none *ConfigSlots
	if _, ok := none.Acquire(slow); !ok {
		t.Fatal("no slots: always granted")
	}
}
