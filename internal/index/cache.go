package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Cache is controller-runtime's informer cache with the compact indexes (Compact) in front of
// it: a List whose field selector names one of them is answered from its keyMap and the
// informer's store; everything else is the cache's own. Build it with NewCache (the manager
// does: ctrl.Options.NewCache), so that every reader of the cache - the manager's client, the
// SCIM store, the controllers, the authorization webhook, the kubernetes backend - keeps
// listing with client.MatchingFields as before.
type Cache struct {
	cache.Cache
	scheme *runtime.Scheme
	// copyOff: the kinds the cache's options serve without a deep copy.
	copyOff      map[schema.GroupVersionKind]bool
	copyOffByDef bool
	started      atomic.Bool

	mu sync.RWMutex
	// compact holds the compact indexes by kind and field.
	compact map[schema.GroupVersionKind]map[string]*compactIndex
}

var _ cache.Cache = (*Cache)(nil)

// NewCache is a cache.NewCacheFunc: cache.New's cache, wrapped to carry compact indexes.
func NewCache(cfg *rest.Config, opts cache.Options) (cache.Cache, error) {
	if opts.Scheme == nil {
		opts.Scheme = scheme.Scheme // (cache.New's default)
	}
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	ic, err := Wrap(c, opts)
	if err != nil {
		return nil, err // (not a typed nil in the interface)
	}
	return ic, nil
}

// Wrap wraps c, built with opts, to carry compact indexes (NewCache does it to cache.New's).
func Wrap(c cache.Cache, opts cache.Options) (*Cache, error) {
	if opts.Scheme == nil {
		opts.Scheme = scheme.Scheme
	}
	ic := &Cache{Cache: c, scheme: opts.Scheme, copyOff: map[schema.GroupVersionKind]bool{},
		copyOffByDef: opts.DefaultUnsafeDisableDeepCopy != nil && *opts.DefaultUnsafeDisableDeepCopy,
		compact:      map[schema.GroupVersionKind]map[string]*compactIndex{}}
	for obj, bo := range opts.ByObject {
		if bo.UnsafeDisableDeepCopy == nil {
			continue
		}
		gvk, err := apiutil.GVKForObject(obj, opts.Scheme)
		if err != nil {
			return nil, err
		}
		ic.copyOff[gvk] = *bo.UnsafeDisableDeepCopy
	}
	return ic, nil
}

// Of is c as a Cache with compact indexes, or nil when it is another cache.
func Of(c cache.Cache) *Cache {
	ic, _ := c.(*Cache)
	return ic
}

// compactIndex is one field's keyMap on one kind, fed by an event handler on the kind's
// informer.
type compactIndex struct {
	field string
	scope Scope
	fn    client.IndexerFunc
	keys  *keyMap
	// store is the informer's own store: read only (its objects are shared).
	store toolscache.Store
	reg   toolscache.ResourceEventHandlerRegistration
}

// Compact registers a compact index of field on obj's kind, answering lookups of one scope
// (as Field). On a Cache (NewCache) it keeps a keyMap fed by an event handler on the kind's
// informer; on a FieldIndexer that is not a cache (a fake client in a unit test) it is the
// FieldIndexer's own IndexField. Any other cache is refused: it would silently fall back to
// client-go's index and its memory.
func Compact(ctx context.Context, fi client.FieldIndexer, obj client.Object, field string, scope Scope, fn client.IndexerFunc) error {
	switch c := fi.(type) {
	case *Cache:
		return c.addCompact(ctx, obj, field, scope, fn)
	case interface {
		GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error)
	}:
		return fmt.Errorf("index %s: %T is not a cache built by index.NewCache", field, c)
	default:
		return fi.IndexField(ctx, obj, field, fn)
	}
}

func (c *Cache) addCompact(ctx context.Context, obj client.Object, field string, scope Scope, fn client.IndexerFunc) error {
	gvk, err := apiutil.GVKForObject(obj, c.scheme)
	if err != nil {
		return err
	}
	if _, ok := obj.(runtime.Unstructured); ok {
		return fmt.Errorf("index %s: %s: compact indexes are for typed objects", field, gvk.Kind)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.compact[gvk][field] != nil {
		return fmt.Errorf("index %s: already registered on %s", field, gvk.Kind)
	}
	inf, err := c.Cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	si, ok := inf.(interface{ GetStore() toolscache.Store })
	if !ok {
		return fmt.Errorf("index %s: the %s informer (%T) does not expose its store", field, gvk.Kind, inf)
	}
	ix := &compactIndex{field: field, scope: scope, fn: fn, keys: newKeyMap(), store: si.GetStore()}
	ix.reg, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { ix.update(nil, o) },
		UpdateFunc: ix.update,
		DeleteFunc: func(o any) { ix.update(o, nil) },
	})
	if err != nil {
		return err
	}
	if c.compact[gvk] == nil {
		c.compact[gvk] = map[string]*compactIndex{}
	}
	c.compact[gvk][field] = ix
	return nil
}

// update follows one event of the informer: old is the object's previous state (nil: an
// add), cur its new one (nil: a delete).
func (ix *compactIndex) update(old, cur any) {
	if d, ok := old.(toolscache.DeletedFinalStateUnknown); ok {
		// deleted while the watch was down: Obj is the store's last state of it, the one this
		// handler was last told (the informer tells its handlers every state its store holds)
		if _, isObj := d.Obj.(client.Object); !isObj {
			if ns, name, err := toolscache.SplitMetaNamespaceKey(d.Key); err == nil {
				ix.keys.removeEverywhere(types.NamespacedName{Namespace: ns, Name: name})
			}
			return
		}
		old = d.Obj
	}
	o, _ := old.(client.Object)
	n, _ := cur.(client.Object)
	switch {
	case o != nil && n != nil && (o.GetNamespace() != n.GetNamespace() || o.GetName() != n.GetName()):
		// (never from an informer: an update keeps the key)
		ix.keys.update(keyOf(o), ix.fn(o), nil)
		ix.keys.update(keyOf(n), nil, ix.fn(n))
	case n != nil:
		var oldVals []string
		if o != nil {
			oldVals = ix.fn(o)
		}
		ix.keys.update(keyOf(n), oldVals, ix.fn(n))
	case o != nil:
		ix.keys.update(keyOf(o), ix.fn(o), nil)
	}
}

func keyOf(o client.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
}

// storeKey is the informer store's key of k (cache.MetaNamespaceKeyFunc's).
func storeKey(k types.NamespacedName) string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// caughtUp tells whether the index has seen the informer's initial list.
func (ix *compactIndex) caughtUp() bool { return ix.reg.HasSynced() }

// errOneField: a field selector that names a compact index names nothing else.
var errOneField = errors.New("a field selector with a compact index names no other field")

// lookup answers the objects of the store that carry value in namespace ns (under the
// index's scope: InNamespace answers a namespace's lookups only, AllNamespaces lookups
// across namespaces only, as Field's indexes do): each candidate of the keyMap is read in
// the store and kept only if it still carries value (the keyMap may lag the store, and a
// hash may collide). The objects are the store's own.
func (ix *compactIndex) lookup(ns, value string) []runtime.Object {
	if (ix.scope == InNamespace) != (ns != "") {
		return nil
	}
	var out []runtime.Object
	for _, k := range ix.keys.lookup(value) {
		if ns != "" && k.Namespace != ns {
			continue
		}
		raw, ok, err := ix.store.GetByKey(storeKey(k))
		if err != nil || !ok {
			continue // gone since (the delete's event is on its way)
		}
		o, ok := raw.(client.Object)
		if !ok || !slices.Contains(ix.fn(o), value) {
			continue // no longer carries it (renamed), or a collision
		}
		out = append(out, o)
	}
	return out
}

// compactFor is the compact index a List of list with opts reads (nil: the cache's own List),
// or an error for a selector it cannot answer.
func (c *Cache) compactFor(list client.ObjectList, lo *client.ListOptions) (*compactIndex, schema.GroupVersionKind, string, error) {
	if lo.FieldSelector == nil {
		return nil, schema.GroupVersionKind{}, "", nil
	}
	switch list.(type) {
	case runtime.Unstructured, *metav1.PartialObjectMetadataList:
		return nil, schema.GroupVersionKind{}, "", nil // (other informers, without compact indexes)
	}
	gvk, err := apiutil.GVKForObject(list, c.scheme)
	if err != nil {
		return nil, gvk, "", nil // the cache's own List gives the error
	}
	gvk.Kind = trimList(gvk.Kind)
	c.mu.RLock()
	byField := c.compact[gvk]
	c.mu.RUnlock()
	if len(byField) == 0 {
		return nil, gvk, "", nil
	}
	reqs := lo.FieldSelector.Requirements()
	for _, r := range reqs {
		ix := byField[r.Field]
		if ix == nil {
			continue
		}
		if len(reqs) != 1 || (r.Operator != selection.Equals && r.Operator != selection.DoubleEquals) {
			return nil, gvk, "", fmt.Errorf("index %s: %w (selector %q)", r.Field, errOneField, lo.FieldSelector)
		}
		return ix, gvk, r.Value, nil
	}
	return nil, gvk, "", nil
}

func trimList(kind string) string {
	if len(kind) > 4 && kind[len(kind)-4:] == "List" {
		return kind[:len(kind)-4]
	}
	return kind
}

// List answers a lookup of a compact index from its keyMap and the informer's store, as the
// cache's own List answers one of client-go's: namespace, label selector, limit and deep copy
// (unless UnsafeDisableDeepCopy) as it does. Until the index has seen the informer's initial
// list, a lookup waits for it (as the cache's own reads wait for their informer's sync),
// bounded by ctx: a partial map would answer "no such user" for one that exists, which a
// SCIM create takes as leave to create a duplicate. The manager's WaitForCacheSync waits for
// the indexes too, so that a started manager does not wait here.
func (c *Cache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	ix, gvk, value, err := c.compactFor(list, lo)
	if err != nil {
		return err
	}
	if ix == nil {
		return c.Cache.List(ctx, list, opts...)
	}
	if lo.Continue != "" {
		return errors.New("continue list option is not supported by the cache")
	}
	if !c.started.Load() {
		return &cache.ErrCacheNotStarted{}
	}
	if !ix.caughtUp() {
		select {
		case <-ix.reg.HasSyncedChecker().Done():
		case <-ctx.Done():
			return fmt.Errorf("index %s of %s has not seen the initial list yet: %w", ix.field, gvk.Kind, ctx.Err())
		}
	}
	noCopy := c.copyOffByDef
	if off, ok := c.copyOff[gvk]; ok {
		noCopy = off
	}
	if lo.UnsafeDisableDeepCopy != nil {
		noCopy = noCopy || *lo.UnsafeDisableDeepCopy
	}
	found := ix.lookup(lo.Namespace, value)
	items := make([]runtime.Object, 0, len(found))
	for _, o := range found {
		if lo.Limit > 0 && int64(len(items)) >= lo.Limit {
			break
		}
		if lo.LabelSelector != nil && !lo.LabelSelector.Matches(labelsOf(o)) {
			continue
		}
		if !noCopy {
			o = o.DeepCopyObject()
			o.GetObjectKind().SetGroupVersionKind(gvk)
		}
		items = append(items, o)
	}
	if err := apimeta.SetList(list, items); err != nil {
		return err
	}
	list.SetContinue("continue-not-supported")
	return nil
}

// Start starts the cache (and notes it: a lookup before then fails as the cache's own do).
func (c *Cache) Start(ctx context.Context) error {
	c.started.Store(true)
	return c.Cache.Start(ctx)
}

// WaitForCacheSync waits for the informers and then for every compact index to have seen
// its informer's initial list.
func (c *Cache) WaitForCacheSync(ctx context.Context) bool {
	if !c.Cache.WaitForCacheSync(ctx) {
		return false
	}
	for _, ix := range c.all() {
		select {
		case <-ix.reg.HasSyncedChecker().Done():
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// RemoveInformer refuses an informer that feeds a compact index: its lookups would wait for
// a sync that never comes.
func (c *Cache) RemoveInformer(ctx context.Context, obj client.Object) error {
	if gvk, err := apiutil.GVKForObject(obj, c.scheme); err == nil {
		c.mu.RLock()
		n := len(c.compact[gvk])
		c.mu.RUnlock()
		if n > 0 {
			return fmt.Errorf("the %s informer feeds compact indexes: not removed", gvk.Kind)
		}
	}
	return c.Cache.RemoveInformer(ctx, obj)
}

// NeedLeaderElection is false, as for controller-runtime's own cache: every replica caches.
func (c *Cache) NeedLeaderElection() bool { return false }

func (c *Cache) all() []*compactIndex {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*compactIndex
	for _, byField := range c.compact {
		for _, ix := range byField {
			out = append(out, ix)
		}
	}
	return out
}

// Shows tells whether every compact index of obj's kind agrees with obj as the cache holds
// it: each of its values names it, or, when gone (deleted, no longer in the cache), none of
// them does. A writer that waited for the cache to show its write (scimstore's waitCache)
// waits for this too, so that its next lookup by the written values finds what it wrote: the
// indexes follow the informer's store a moment later (their event handlers). A stale entry
// of a gone object would not be found by a lookup anyway (it re-reads the store). A nil
// Cache, or a kind without compact indexes, shows everything.
func (c *Cache) Shows(obj client.Object, gone bool) bool {
	if c == nil || obj == nil {
		return true
	}
	gvk, err := apiutil.GVKForObject(obj, c.scheme)
	if err != nil {
		return true
	}
	c.mu.RLock()
	byField := c.compact[gvk]
	c.mu.RUnlock()
	k := keyOf(obj)
	for _, ix := range byField {
		for _, v := range ix.fn(obj) {
			if ix.keys.has(v, k) == gone {
				return false
			}
		}
	}
	return true
}

func labelsOf(o runtime.Object) labels.Set {
	if m, ok := o.(interface{ GetLabels() map[string]string }); ok {
		return m.GetLabels()
	}
	return nil
}
