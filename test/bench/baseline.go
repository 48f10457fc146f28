package main

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
)

// The full sync's baselines: the API server alone making the sync's writes for n users,
// on twins no controller watches (twin.go).
//
//   - The members alone: the member creates, at the sync's concurrency c (the create
//     throughput's ceiling; tables up to a086f67 judged the sync against it).
//   - The same writes: for each user, one after another as the sync makes them, the member
//     created, its grant created (an OrgGrant twin in the Webhook layout; a
//     ClusterRoleBinding in the Bindings layout, as the backend writes for the sample's
//     cluster-wide role), its status written (phase Active) and the event that tells of it
//     created (DESIGN.md: events explain each change). No design that converges a member
//     and explains the change writes less. They are timed at c, and at c plus the
//     manager's workers (the most requests the sync itself can have in flight: the IdP's
//     and the workers'); the faster is the baseline. Each user's writes wait for one
//     another, where the manager's pipeline does not: at c alone, the API server might
//     not reach its limit, and a slow baseline flatters the sync.
//
// The three sides run in alternating chunks, each chunk in a different order, so that the
// machine's background work (a collection, the API server's compaction, a drift pass)
// falls on all of them alike.

// sameSide is one concurrency's time for the same writes, and the machine's busy cores
// meanwhile (near the core count: the API server at the machine's limit).
type sameSide struct {
	took time.Duration
	cpu  float64
	busy float64
}

type baselineTimes struct {
	members time.Duration
	at      map[int]*sameSide
	// same is the fastest concurrency's time for the same writes: the baseline
	same    time.Duration
	fastest int
}

// words says the baseline's time, concurrency and busy cores, then the other
// concurrency's.
func (t baselineTimes) words() string {
	s := t.at[t.fastest]
	w := fmt.Sprintf("%s for each user's member, grant, status and event at concurrency %d (%.1f of %d cores busy)",
		s.took.Round(time.Millisecond), t.fastest, s.busy, runtime.NumCPU())
	for _, c := range slices.Sorted(maps.Keys(t.at)) {
		if s := t.at[c]; c != t.fastest {
			w += fmt.Sprintf("; %s at concurrency %d (%.1f busy)", s.took.Round(time.Millisecond), c, s.busy)
		}
	}
	return w
}

const (
	membersNS = "bench-raw"
	sameNS    = "bench-same"
	// benchLabel marks the Bindings layout's baseline bindings, deleted once timed
	benchLabel = "bench.scim.operator.dev/baseline"
)

func (b *bench) baselines(ctx context.Context, n, c int) (baselineTimes, error) {
	cl := b.s.cluster.Client
	for _, ns := range []string{membersNS, sameNS} {
		if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return baselineTimes{}, err
		}
	}
	workers := b.o.workers
	if workers == 0 {
		workers = controllers.DefaultMaxConcurrentReconciles
	}
	t := baselineTimes{at: map[int]*sameSide{c: {}, c + workers: {}}}
	type sideFn struct {
		run func(from, to int) error
		add func(time.Duration, float64)
	}
	sides := []sideFn{{
		run: func(from, to int) error {
			return parallel(to-from, c, func(i int) error {
				_, err := createTwin(ctx, cl, rawMember(membersNS, "absent", fmt.Sprintf("members%06d@example.com", from+i), true))
				return err
			})
		},
		add: func(d time.Duration, _ float64) { t.members += d },
	}}
	for cc, st := range t.at {
		sides = append(sides, sideFn{
			run: func(from, to int) error {
				return parallel(to-from, cc, func(i int) error {
					return b.sameWrites(ctx, fmt.Sprintf("same-c%d-%06d@example.com", cc, from+i))
				})
			},
			add: func(d time.Duration, cpu float64) { st.took += d; st.cpu += cpu },
		})
	}
	chunk := max(min(n, 100), (n+4)/5)
	for k, from := 0, 0; from < n; k, from = k+1, from+chunk {
		to := min(n, from+chunk)
		for j := range sides {
			sd := sides[(j+k)%len(sides)]
			c0, err := b.s.cpuNow()
			if err != nil {
				return t, err
			}
			t0 := time.Now()
			if err := sd.run(from, to); err != nil {
				return t, err
			}
			took := time.Since(t0)
			c1, err := b.s.cpuNow()
			if err != nil {
				return t, err
			}
			sd.add(took, c1.sub(c0).machine)
		}
	}
	for cc, st := range t.at {
		st.busy = st.cpu / st.took.Seconds()
		if t.fastest == 0 || st.took < t.same {
			t.same, t.fastest = st.took, cc
		}
	}
	return t, b.dropBaselineBindings(ctx)
}

// sameWrites makes one user's writes of the full sync, as the API server alone would:
// the member, its grant, its status and its event (above).
func (b *bench) sameWrites(ctx context.Context, u string) error {
	cl := b.s.cluster.Client
	m := rawMember(sameNS, "absent", u, true)
	tm, err := createTwin(ctx, cl, m)
	if err != nil {
		return err
	}
	if b.o.layout == scimv1.GrantLayoutBindings {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "bench-" + m.Name, Labels: map[string]string{benchLabel: "same"}},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		}
		if err := cl.Create(ctx, crb); err != nil {
			return fmt.Errorf("create the baseline's binding of %s: %w", u, err)
		}
	} else {
		g := &scimv1.OrgGrant{ObjectMeta: metav1.ObjectMeta{Namespace: sameNS, Name: m.Name},
			Spec: scimv1.OrgGrantSpec{Subject: scimv1.OrgGrantSubject{Kind: scimv1.GrantSubjectUser, Name: u},
				Role: scimv1.OrgGrantRole{Kind: scimv1.GrantRoleClusterRole, Name: "view"}}}
		if _, err := createTwin(ctx, cl, g); err != nil {
			return err
		}
	}
	if err := activateTwin(ctx, cl, tm); err != nil {
		return err
	}
	return twinEvent(ctx, cl, tm, fmt.Sprintf("%s added to organization bench as view", u))
}

// dropBaselineBindings deletes the Bindings layout's baseline bindings and waits until the
// API server no longer lists them: RBAC walks every binding, so left in place they would
// slow the sync's authorizations and the deprovisions' reviews.
func (b *bench) dropBaselineBindings(ctx context.Context) error {
	if b.o.layout != scimv1.GrantLayoutBindings {
		return nil
	}
	cl := b.s.cluster.Client
	sel := client.MatchingLabels{benchLabel: "same"}
	if err := cl.DeleteAllOf(ctx, &rbacv1.ClusterRoleBinding{}, sel); err != nil {
		return err
	}
	return until(ctx, 5*time.Minute, func() (bool, error) {
		var l rbacv1.ClusterRoleBindingList
		err := cl.List(ctx, &l, sel)
		return err == nil && len(l.Items) == 0, err
	}, func() error {
		return fmt.Errorf("the baseline's bindings were still listed 5 minutes after their deletion")
	})
}
