package backend

import (
	"errors"
	"fmt"
	"time"
)

// Class says what a caller should do about a failed call.
type Class int

const (
	// Transient failures (5xx, network, timeouts) are retried with backoff.
	Transient Class = iota
	// RateLimited failures are retried after the backend's hint.
	RateLimited
	// Permanent failures (bad credentials, an invalid user, a refused operation) are not
	// retried until something changes; they surface as a condition.
	Permanent
)

func (c Class) String() string {
	switch c {
	case RateLimited:
		return "RateLimited"
	case Permanent:
		return "Permanent"
	default:
		return "Transient"
	}
}

// Error is a classified backend failure.
type Error struct {
	Class Class
	// Reason is a short CamelCase word for conditions and events (for example
	// "InvalidCredentials", "LastOwner", "InvalidUser", "BackendUnavailable").
	Reason string
	// RetryAfter is the backend's hint for RateLimited errors (zero when it gave none).
	RetryAfter time.Duration
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Class, e.Reason)
	}
	return fmt.Sprintf("%s (%s): %v", e.Reason, e.Class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// NewTransient classifies err as transient.
func NewTransient(reason string, err error) error {
	return &Error{Class: Transient, Reason: reason, Err: err}
}

// NewRateLimited classifies err as rate limited, with the backend's retry hint.
func NewRateLimited(after time.Duration, err error) error {
	return &Error{Class: RateLimited, Reason: "RateLimited", RetryAfter: after, Err: err}
}

// NewPermanent classifies err as permanent.
func NewPermanent(reason string, err error) error {
	return &Error{Class: Permanent, Reason: reason, Err: err}
}

// ClassOf returns the class of err: an unclassified error is Transient.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// ReasonOf returns the reason of a classified error, or "BackendError".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	return "BackendError"
}

// RetryAfterOf returns the retry hint of a rate-limited error.
func RetryAfterOf(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.Class == RateLimited {
		return e.RetryAfter, true
	}
	return 0, false
}
