package controllers

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
)

// unitScheme is the scheme of the unit tests' fake clients: Kubernetes' types and ours.
func unitScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := scimv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// builderIndexer registers indexes on a fake client's builder.
type builderIndexer struct{ b *fake.ClientBuilder }

func (bi builderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	bi.b.WithIndex(obj, field, fn)
	return nil
}

// withShippedIndexes registers the manager's cache indexes (index.Setup) on b.
func withShippedIndexes(t *testing.T, b *fake.ClientBuilder) *fake.ClientBuilder {
	t.Helper()
	if err := index.Setup(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	return b
}

// fillShare takes every worker slot cfg may hold, and returns their releases.
func fillShare(s *ConfigSlots, cfg *scimv1.ScimConfig) []func() {
	var held []func()
	for {
		release, ok := s.Acquire(cfg, false)
		if !ok {
			return held
		}
		held = append(held, release)
	}
}
