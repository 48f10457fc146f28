package scimstore

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
)

func TestAPIError(t *testing.T) {
	gr := schema.GroupResource{Group: "scim.operator.dev", Resource: "orgmembers"}
	cases := []struct {
		err      error
		status   int
		scimType string
	}{
		{apierrors.NewNotFound(gr, "x"), 404, ""},
		{apierrors.NewAlreadyExists(gr, "x"), 409, scim.ErrUniqueness},
		{apierrors.NewConflict(gr, "x", errors.New("rv")), 412, ""},
		{apierrors.NewInvalid(schema.GroupKind{Group: gr.Group, Kind: "OrgMember"}, "x",
			field.ErrorList{field.TooLong(field.NewPath("spec", "userName"), "", 256)}), 400, scim.ErrInvalidValue},
		{apierrors.NewServerTimeout(gr, "create", 1), 503, ""},
		{apierrors.NewTooManyRequests("slow down", 1), 503, ""},
		{context.DeadlineExceeded, 503, ""},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, 503, ""},
		{apierrors.NewUnauthorized("the API server is starting"), 503, ""},
		{apierrors.NewForbidden(gr, "x", errors.New("RBAC not ready")), 503, ""},
	}
	for _, c := range cases {
		var se *scim.Error
		if !errors.As(APIError(c.err, "User"), &se) {
			t.Errorf("%v: not a SCIM error", c.err)
			continue
		}
		if se.Status != c.status || se.ScimType != c.scimType {
			t.Errorf("%v: got %+v", c.err, se)
		}
		if c.status == 503 && se.RetryAfter == 0 {
			t.Errorf("%v: 503 without Retry-After", c.err)
		}
	}
	var se *scim.Error
	if !errors.As(APIError(cases[3].err, "User"), &se) {
		t.Fatalf("%v: not a SCIM error", cases[3].err)
	}
	if se.Detail != "userName: Too long: may not be more than 256 bytes" {
		t.Errorf("invalid detail %q", se.Detail)
	}
}

func TestCheckDomain(t *testing.T) {
	cfg := &scimv1.ScimConfig{Spec: scimv1.ScimConfigSpec{VerifiedDomains: []string{"example.com", "example.org"}}}
	if err := checkDomain(cfg, "a@EXAMPLE.com"); err != nil {
		t.Error(err)
	}
	for _, u := range []string{"a@sub.example.com", "example.com", "a@example.com.evil"} {
		err := checkDomain(cfg, u)
		var se *scim.Error
		if !errors.As(err, &se) || se.Status != 400 || se.ScimType != scim.ErrInvalidValue ||
			se.Detail != `userName "`+u+`" is not in a verified domain of this organization; allowed domains: example.com, example.org` {
			t.Errorf("%s: %v", u, err)
		}
	}
	if err := checkDomain(&scimv1.ScimConfig{}, "not-an-email"); err != nil {
		t.Error(err)
	}
}
