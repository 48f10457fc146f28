package scimstore

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// A write is visible once the cache holds that version or a later one: a controller that
// writes the object (a finalizer, its status) before the cache saw the store's own write
// must not make every SCIM create wait the whole CacheWait. It did, once the OrgMember
// controller got several workers: the scimserver suite's 600 sequential creates of its
// large-group spec waited 3 s each.
func TestWaitCacheAcceptsALaterVersion(t *testing.T) {
	s := runtime.NewScheme()
	if err := scimv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "m"}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(m).Build()
	written := m.DeepCopy()
	// a controller's write after ours: the cache now shows a later version
	m.Finalizers = []string{"scim.operator.dev/deprovision"}
	if err := c.Update(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if written.ResourceVersion == m.ResourceVersion {
		t.Fatalf("the update did not move the version (%s)", m.ResourceVersion)
	}
	st := &Store{Client: c, CacheWait: time.Hour}
	done := make(chan struct{})
	go func() {
		st.waitCache(context.Background(), written, written.ResourceVersion)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // liveness only: the old code waits the full hour
		t.Fatalf("waitCache for version %s did not accept the cache's later version %s", written.ResourceVersion, m.ResourceVersion)
	}
}
