package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// The API server's own time for the writes the full sync makes ("API server alone") is
// measured on twins of OrgMember and OrgGrant: the same CRDs (schema, status subresource)
// under a group of the bench's own, which no controller watches. Writing real OrgMembers
// for a config that does not exist made the member controller write a ConfigNotFound
// status beside every one of them, so the baseline ran beside the manager's work and the
// ratios against it looked better than they were.
const twinGroup = "bench.scim.operator.dev"

// installTwins applies the twin CRDs.
func installTwins(ctx context.Context, c client.Client) error {
	for _, f := range []string{"scim.operator.dev_orgmembers.yaml", "scim.operator.dev_orggrants.yaml"} {
		crd, err := devenv.ReadCRD(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", f))
		if err != nil {
			return err
		}
		crd.Spec.Group = twinGroup
		crd.Name = crd.Spec.Names.Plural + "." + twinGroup
		crd.ResourceVersion, crd.UID = "", ""
		if err := devenv.ApplyCRD(ctx, c, crd); err != nil {
			return err
		}
	}
	return nil
}

// twin is obj as an object of the twin group: the same kind, content and size.
func twin(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	kind := "OrgMember"
	if _, ok := obj.(*scimv1.OrgGrant); ok {
		kind = "OrgGrant"
	}
	u.SetAPIVersion(twinGroup + "/" + scimv1.GroupVersion.Version)
	u.SetKind(kind)
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

// createTwin creates obj's twin.
func createTwin(ctx context.Context, c client.Client, obj client.Object) (*unstructured.Unstructured, error) {
	u, err := twin(obj)
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx, u); err != nil {
		return nil, fmt.Errorf("create the twin of %s: %w", obj.GetName(), err)
	}
	return u, nil
}

// activateTwin writes a twin member's status as the controllers write a converged
// member's: phase Active.
func activateTwin(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	return c.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"status":{"phase":"Active"}}`)))
}

// twinEvent creates the event the member controller's recorder writes when it has granted
// a member (reason Added, action Provision), about the twin member u: the same object
// and size, under the name the recorder gives it.
func twinEvent(ctx context.Context, c client.Client, u *unstructured.Unstructured, note string) error {
	now := time.Now()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: u.GetNamespace(), Name: fmt.Sprintf("%s.%x", u.GetName(), now.UnixNano())},
		EventTime:  metav1.NewMicroTime(now), ReportingController: "orgmember-controller",
		ReportingInstance: "orgmember-controller-bench", Action: "Provision", Reason: controllers.EventAdded,
		Regarding: corev1.ObjectReference{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(),
			Name: u.GetName(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion()},
		Note: note, Type: corev1.EventTypeNormal,
	}
	if err := c.Create(ctx, ev); err != nil {
		return fmt.Errorf("create the event of %s: %w", u.GetName(), err)
	}
	return nil
}
