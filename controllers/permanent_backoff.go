package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// PermanentRetryCap bounds the wait between the retries of a member that wants access and
// keeps failing with one Permanent error (a member that is to lose access, and a group,
// are retried every interval: review 21).
//
// Why a day, and not a multiple of the resync interval: the budget the retries spend is
// per minute and per organization (Docker Hub's 180 requests a minute by default), shared
// with the drift pass and every healthy member, whatever the interval. A retry of a
// refused member costs about 5 calls, so N members refused for good cost 5N calls per
// cap: for 1,000 of them a day's cap is 3.5 calls a minute (2% of the budget), 10,000 of
// them 35 (19%); 16 intervals of the default 10 minutes would be 31 and 310 a minute,
// more than the whole budget. What the cap delays is noticing a repair made outside
// Kubernetes (seats bought, the account created at Docker Hub): anything in Kubernetes that
// can repair the failure (the member's spec, the config's spec or its BackendReady, the
// reconcile annotation that `kubectl scim resync member` sets) retries at once, whatever
// the wait. The largest resyncInterval allowed is 24h, so the first retry still comes one
// interval after the failure.
const PermanentRetryCap = 24 * time.Hour

// permanentFailure records a Permanent failure (reason, msg) on the Synced condition of a
// member of generation gen, and returns how long to wait before retrying it.
//
// The first retry waits one resync interval, so a backend repaired by hand is noticed soon
// after a failure; after that the wait is as long as the object has been failing with this
// same failure, so the waits double (1, 1, 2, 4, ... intervals), up to PermanentRetryCap.
// It needs no state of its own: the Synced condition's lastTransitionTime is when the
// failure began, since Synced stays False while it lasts (meta.SetStatusCondition keeps
// the time while the status does not change).
//
// again tells whether the member's status shows this failure as its last outcome (phase
// Failed with this message). It is the same failure only if Synced is still False, for the
// same generation: any other outcome (a success, a different failure, a changed spec)
// starts over, and so the lastTransitionTime of a failure that follows another False
// outcome is set to now rather than kept.
func permanentFailure(conds *[]metav1.Condition, gen int64, reason, msg string, again bool,
	interval time.Duration, now time.Time) time.Duration {
	prev := meta.FindStatusCondition(*conds, scimv1.ConditionSynced)
	same := again && prev != nil && prev.Status == metav1.ConditionFalse && prev.ObservedGeneration == gen &&
		!prev.LastTransitionTime.IsZero()
	setCond(conds, gen, scimv1.ConditionSynced, metav1.ConditionFalse, reason, msg)
	c := meta.FindStatusCondition(*conds, scimv1.ConditionSynced)
	if !same {
		c.LastTransitionTime = metav1.NewTime(now)
		return interval
	}
	return permanentRetryWait(interval, now.Sub(c.LastTransitionTime.Time))
}

// permanentRetryWait is the wait before the next retry of an object failing for failingFor
// (permanentFailure).
func permanentRetryWait(interval, failingFor time.Duration) time.Duration {
	return min(max(interval, failingFor), max(interval, PermanentRetryCap))
}
