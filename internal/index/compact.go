package index

import (
	"hash/maphash"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// keyMap maps index values to the keys of the objects that carry them, compactly: client-go's
// indexer keeps a set (a map) of object keys per value, about 200 bytes for the one key most
// values here have (a userName, an externalId, a grant's owner UID or subject), which made the
// indexes ~31% of the manager's live heap at 100,000 members (make bench). A value is kept as
// its 64-bit hash (maphash, seeded per map) and its objects as their namespace and name, the
// strings the cached object already holds:
//
//   - one object (most values): one entry of one, no allocation of its own;
//   - two to maxFew objects (a member's grants of several roles, two members that share a
//     userName for a moment): a slice in few;
//   - more (an externalId an IdP gave everyone): a set in lots, so that adding and removing
//     stay constant-time however many objects share the value.
//
// A hash may collide, and the map may lag the informer's store by a moment: a lookup only
// names candidates, which the reader re-checks against the store (Cache.List): a collision or
// a stale entry costs a store read, never a wrong answer.
type keyMap struct {
	seed maphash.Seed

	mu   sync.RWMutex
	one  map[uint64]types.NamespacedName
	few  map[uint64][]types.NamespacedName
	lots map[uint64]map[types.NamespacedName]struct{}
}

// maxFew is the most keys a value keeps in a slice; past it, a set.
const maxFew = 16

func newKeyMap() *keyMap {
	return &keyMap{seed: maphash.MakeSeed(), one: map[uint64]types.NamespacedName{},
		few: map[uint64][]types.NamespacedName{}, lots: map[uint64]map[types.NamespacedName]struct{}{}}
}

func (m *keyMap) hash(value string) uint64 { return maphash.String(m.seed, value) }

// update moves key from the values of its old state to those of its new one (nil: none, as
// for an add or a delete). A value in both is kept, its key refreshed to k's strings (the
// object's current ones, so that an older version's are not kept alive).
func (m *keyMap) update(k types.NamespacedName, oldVals, newVals []string) {
	if len(oldVals) == 0 && len(newVals) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range oldVals {
		if !slices.Contains(newVals, v) {
			m.remove(m.hash(v), k)
		}
	}
	for _, v := range newVals {
		m.add(m.hash(v), k)
	}
}

// add records k under h (again: its strings refreshed).
func (m *keyMap) add(h uint64, k types.NamespacedName) {
	if set, ok := m.lots[h]; ok {
		delete(set, k) // a map keeps its first key's strings: replace them
		set[k] = struct{}{}
		return
	}
	if keys, ok := m.few[h]; ok {
		if i := slices.Index(keys, k); i >= 0 {
			keys[i] = k
			return
		}
		if len(keys) < maxFew {
			m.few[h] = append(keys, k)
			return
		}
		set := make(map[types.NamespacedName]struct{}, len(keys)+1)
		for _, o := range keys {
			set[o] = struct{}{}
		}
		set[k] = struct{}{}
		m.lots[h] = set
		delete(m.few, h)
		return
	}
	if o, ok := m.one[h]; ok && o != k {
		m.few[h] = []types.NamespacedName{o, k}
		delete(m.one, h)
		return
	}
	m.one[h] = k
}

// remove drops k from h, if it is there.
func (m *keyMap) remove(h uint64, k types.NamespacedName) {
	if set, ok := m.lots[h]; ok {
		delete(set, k)
		if len(set) <= maxFew/2 { // (not at maxFew: a value on the edge would flip back and forth)
			keys := make([]types.NamespacedName, 0, len(set))
			for o := range set {
				keys = append(keys, o)
			}
			delete(m.lots, h)
			m.put(h, keys)
		}
		return
	}
	if keys, ok := m.few[h]; ok {
		if i := slices.Index(keys, k); i >= 0 {
			keys[i] = keys[len(keys)-1]
			keys[len(keys)-1] = types.NamespacedName{}
			delete(m.few, h)
			m.put(h, keys[:len(keys)-1])
		}
		return
	}
	if o, ok := m.one[h]; ok && o == k {
		delete(m.one, h)
	}
}

// put stores keys (not in any of the maps) under h in the map their number calls for.
func (m *keyMap) put(h uint64, keys []types.NamespacedName) {
	switch len(keys) {
	case 0:
	case 1:
		m.one[h] = keys[0]
	default:
		m.few[h] = keys
	}
}

// removeEverywhere drops k from every value: for a deletion whose last state is unknown
// (a tombstone without an object), whose values cannot be computed. It reads the whole map.
func (m *keyMap) removeEverywhere(k types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, o := range m.one {
		if o == k {
			delete(m.one, h)
		}
	}
	for h, keys := range m.few {
		if slices.Contains(keys, k) {
			m.remove(h, k)
		}
	}
	for h, set := range m.lots {
		if _, ok := set[k]; ok {
			m.remove(h, k)
		}
	}
}

// lookup returns a copy of the keys recorded under value (candidates: see keyMap).
func (m *keyMap) lookup(value string) []types.NamespacedName {
	h := m.hash(value)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if k, ok := m.one[h]; ok {
		return []types.NamespacedName{k}
	}
	if keys, ok := m.few[h]; ok {
		return slices.Clone(keys)
	}
	if set, ok := m.lots[h]; ok {
		keys := make([]types.NamespacedName, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
		return keys
	}
	return nil
}

// has tells whether k is recorded under value.
func (m *keyMap) has(value string, k types.NamespacedName) bool {
	h := m.hash(value)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if o, ok := m.one[h]; ok {
		return o == k
	}
	if keys, ok := m.few[h]; ok {
		return slices.Contains(keys, k)
	}
	_, ok := m.lots[h][k]
	return ok
}
