// Package cachepolicy is what the manager caches and what it reads live: one place, used by
// manager.New and by the tests too low in the import graph to build the whole manager
// (internal/scimstore's own), so that every cache a test reads through is the shipped one.
package cachepolicy

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// Cache keeps only what the server and the controllers read: members are cached by the
// thousand, so managedFields are stripped, and members and grants share the strings they
// repeat (intern.go); the kubernetes backend's bindings are cached only when they carry its
// labels.
func Cache() cache.Options {
	by := k8sbackend.CacheByObject()
	by[&scimv1.OrgMember{}] = cache.ByObject{Transform: interned.transform()}
	by[&scimv1.OrgGrant{}] = cache.ByObject{Transform: interned.transform()}
	return cache.Options{DefaultTransform: stripManagedFields, ByObject: by}
}

var (
	stripManagedFields = cache.TransformStripManagedFields()
	// interned is the process's one table of interned strings, shared by every cache built
	// from Cache (a manager builds one).
	interned = newInterner(maxInterned)
)

// Client reads Secrets directly (token and credential Secrets only), never caching them whole.
func Client() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}
