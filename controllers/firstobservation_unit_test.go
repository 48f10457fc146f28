package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/plan"
)

func firstObsMember(i int, created time.Time) *scimv1.OrgMember {
	m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("m%d", i),
		CreationTimestamp: metav1.NewTime(created)}}
	m.Spec.UserName = fmt.Sprintf("p%d@example.com", i)
	return m
}

// A burst of members found in the organization already waits for one listing, which then
// answers for the people it shows; new people, a person absent from the listing, a
// listing older than the member, or a lone member are looked up one by one.
func TestFirstObservationUsesOneListingForABurst(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme", UID: "u1"}}
	d := &DriftQueue{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(2 * time.Second)
	// new people (absent from the organization) are looked up one by one however many come
	for i := range 3 * firstObservationBurst {
		m := firstObsMember(1000+i, t0)
		if _, how := d.firstObservation(cfg, m, now); how != observeDirectly {
			t.Fatalf("new person %d: %v, want a direct observation", i, how)
		}
		d.observedDirectly(cfg, backend.Member{UserName: m.Spec.UserName, State: backend.StateAbsent}, now)
	}
	n := 3 * firstObservationBurst
	direct, waiting := 0, 0
	for i := range n {
		m := firstObsMember(i, t0)
		_, how := d.firstObservation(cfg, m, now)
		switch how {
		case observeDirectly:
			d.observedDirectly(cfg, backend.Member{UserName: m.Spec.UserName, State: backend.StateMember}, now)
			direct++
		case waitForListing:
			waiting++
		default:
			t.Fatalf("member %d: observed in a listing before any", i)
		}
	}
	if direct != firstObservationBurst || waiting != n-direct {
		t.Fatalf("%d direct and %d waiting first observations, want %d and %d", direct, waiting, firstObservationBurst, n-direct)
	}
	if len(d.passes) == 0 {
		t.Fatal("the burst asked for no pass")
	}

	// the pass lists everyone but the last person, and enqueues every waiting member
	var list []backend.Member
	for i := range n - 1 {
		list = append(list, backend.Member{UserName: fmt.Sprintf("p%d@example.com", i), BackendID: fmt.Sprintf("p%d", i),
			Role: "member", State: backend.StateMember})
	}
	started := t0.Add(3 * time.Second)
	if got := d.remember(cfg, started, plan.NewListing(list)); len(got) != waiting {
		t.Fatalf("the pass enqueued %d waiting members, want %d", len(got), waiting)
	}
	for i := range n {
		obs, how := d.firstObservation(cfg, firstObsMember(i, t0), started.Add(time.Second))
		switch {
		case i < n-1 && (how != observedInListing || obs.State != backend.StateMember || obs.BackendID != fmt.Sprintf("p%d", i) ||
			obs.UserName != fmt.Sprintf("p%d@example.com", i)):
			t.Fatalf("member %d: %v %+v, want the listing's membership", i, how, obs)
		case i == n-1 && how != observeDirectly:
			t.Fatalf("a person absent from the listing is looked up one by one, got %v", how)
		}
	}
	// a member that appeared after the listing started does not read it
	if _, how := d.firstObservation(cfg, firstObsMember(0, started), started.Add(2*time.Second)); how == observedInListing {
		t.Fatal("a listing started before the member appeared answered its first observation")
	}
	// another config of the same name (a new UID) does not read it either
	other := cfg.DeepCopy()
	other.UID = "u2"
	if _, how := (&DriftQueue{}).firstObservation(other, firstObsMember(0, t0), started.Add(time.Second)); how != observeDirectly {
		t.Fatalf("a lone new member of a fresh config: %v, want a direct observation", how)
	}
	if _, how := d.firstObservation(other, firstObsMember(1, t0), started.Add(time.Second)); how == observedInListing {
		t.Fatal("the listing of a former config of the same name answered")
	}
}

// A member waits for a listing at most listingWaitMax: a pass that keeps failing does not
// hold it.
func TestFirstObservationStopsWaitingForAFailingPass(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme", UID: "u1"}}
	d := &DriftQueue{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range firstObservationBurst + 1 {
		if _, how := d.firstObservation(cfg, firstObsMember(i, t0), t0.Add(2*time.Second)); how == observeDirectly {
			d.observedDirectly(cfg, backend.Member{State: backend.StateInvited}, t0.Add(2*time.Second))
		}
	}
	m := firstObsMember(firstObservationBurst, t0)
	if _, how := d.firstObservation(cfg, m, t0.Add(time.Minute)); how != waitForListing {
		t.Fatalf("%v, want it to keep waiting", how)
	}
	if _, how := d.firstObservation(cfg, m, t0.Add(listingWaitMax+2*time.Second)); how != observeDirectly {
		t.Fatalf("%v after %s, want a direct observation", how, listingWaitMax)
	}
}

// A first observation the request budget refuses waits for a listing while an adoption is
// under way (people were just found one by one), and takes its own turn otherwise.
func TestFirstObservationRateLimitedWaitsForAListingDuringAnAdoption(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme", UID: "u1"}}
	d := &DriftQueue{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(2 * time.Second)
	if d.waitOnRateLimit(cfg, firstObsMember(0, t0), now) {
		t.Fatal("a new person refused by the budget waits for a listing with no adoption under way")
	}
	d.observedDirectly(cfg, backend.Member{State: backend.StateMember}, now)
	if !d.waitOnRateLimit(cfg, firstObsMember(1, t0), now) {
		t.Fatal("during an adoption, a member refused by the budget does not wait for the listing")
	}
	if len(d.passes) != 1 {
		t.Fatalf("%d passes asked for, want 1", len(d.passes))
	}
	if got := d.remember(cfg, now.Add(time.Second), plan.NewListing(nil)); len(got) != 1 {
		t.Fatalf("the pass enqueued %d members, want the one that waited", len(got))
	}
}

// A group reads its team from the config's latest teams listing with this manager's writes
// since it started: those made before it are in the listing already, and a listing older
// than the resync interval is not read (the group observes its team itself).
func TestTeamViewAppliesTheWritesSinceItsPass(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme", UID: "u1"}}
	b := orgTeamsBackend{}
	d := &DriftQueue{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := d.teamView(cfg, b, "crew", t0); ok {
		t.Fatal("a team view without any pass")
	}
	d.wroteTeam(cfg, b, "crew", "gone-before", false, nil, t0.Add(-time.Second)) // before the pass: in its listing
	teams := plan.NewTeams([]string{"crew"}, []backend.Member{
		{UserName: "a@example.com", BackendID: "ann", State: backend.StateMember, Teams: []string{"crew"}},
		{UserName: "b@example.com", BackendID: "bob", State: backend.StateMember, Teams: []string{"crew"}},
		{UserName: "g@example.com", BackendID: "gone-before", State: backend.StateMember, Teams: []string{"crew"}},
	})
	d.rememberTeams(cfg, t0, teams)
	d.wroteTeam(cfg, b, "crew", "Cy", true, nil, t0.Add(time.Second))
	d.wroteTeam(cfg, b, "Crew", "bob", false, nil, t0.Add(2*time.Second))
	d.wroteTeam(cfg, b, "ops", "", true, nil, t0.Add(3*time.Second))
	d.wroteTeam(cfg, b, "ops", "dee", true, nil, t0.Add(4*time.Second))
	now := t0.Add(5 * time.Second)
	crew, ok := d.teamView(cfg, b, "crew", now)
	if !ok || crew == nil {
		t.Fatalf("crew: %v, %v; want the listed team", crew, ok)
	}
	if got := strings.Join(crew.Members, ","); got != "ann,gone-before,Cy" {
		t.Errorf("crew's members: %s, want ann,gone-before,Cy (bob taken out, Cy added since the pass)", got)
	}
	if ops, ok := d.teamView(cfg, b, "ops", now); !ok || ops == nil || strings.Join(ops.Members, ",") != "dee" {
		t.Errorf("ops, created since the pass: %v, %v; want it with dee", ops, ok)
	}
	d.wroteTeam(cfg, b, "ops", "", false, nil, now)
	if ops, ok := d.teamView(cfg, b, "ops", now); !ok || ops != nil {
		t.Errorf("ops, deleted since: %v, %v; want no team", ops, ok)
	}
	if _, ok := d.teamView(cfg, b, "crew", t0.Add(2*resyncInterval(cfg)-time.Second)); !ok {
		t.Error("a teams listing younger than two resync intervals is not read (the next pass may not have ended)")
	}
	if _, ok := d.teamView(cfg, b, "crew", t0.Add(2*resyncInterval(cfg))); ok {
		t.Error("a teams listing as old as two resync intervals is read")
	}
	other := cfg.DeepCopy()
	other.UID = "u2"
	if _, ok := d.teamView(other, b, "crew", now); ok {
		t.Error("a config re-created under the same name reads its predecessor's teams")
	}
	// the next pass's listing has what was written before it started
	d.rememberTeams(cfg, now.Add(time.Second), plan.NewTeams([]string{"crew"}, nil))
	if crew, _ := d.teamView(cfg, b, "crew", now.Add(2*time.Second)); crew == nil || len(crew.Members) != 0 {
		t.Errorf("crew after the next pass: %v, want it as that pass listed it", crew)
	}
	later := now.Add(2 * time.Second)
	d.wroteTeam(cfg, b, "crew", "eve", true, nil, later)
	d.wroteTeam(cfg, b, "ops", "", true, nil, later)
	d.wroteTeam(cfg, b, "ops", "eve", true, nil, later)
	// a team named as Docker Hub also takes it ("acme:crew" is crew) is the same team
	d.wroteTeam(cfg, b, "acme:crew", "fay", true, nil, later)
	if crew, _ := d.teamView(cfg, b, "crew", later); crew == nil || strings.Join(crew.Members, ",") != "eve,fay" {
		t.Errorf("crew: %v, want eve and fay (fay added to it as acme:crew)", crew)
	}
	// a person who left the organization left every team
	d.wroteTeam(cfg, b, "*", "EVE", false, nil, later)
	for _, team := range []string{"crew", "ops"} {
		if got, _ := d.teamView(cfg, b, team, later); got == nil || slices.ContainsFunc(got.Members, func(id string) bool { return strings.EqualFold(id, "eve") }) {
			t.Errorf("%s after eve left the organization: %v, want it without her", team, got)
		}
	}
	// a write that failed may have been done: the team is observed until the next pass
	d.wroteTeam(cfg, b, "crew", "gus", true, errors.New("timeout"), later)
	if _, ok := d.teamView(cfg, b, "crew", later); ok {
		t.Error("crew read from its view after a write to it failed")
	}
	if _, ok := d.teamView(cfg, b, "ops", later); !ok {
		t.Error("ops not read from its view after a write to another team failed")
	}
	d.wroteTeam(cfg, b, "*", "", false, errors.New("timeout"), later) // a removal from the organization failed
	if _, ok := d.teamView(cfg, b, "ops", later); ok {
		t.Error("ops read from its view after a removal from the organization failed")
	}
	d.rememberTeams(cfg, later.Add(time.Second), plan.NewTeams([]string{"crew", "ops"}, nil))
	if _, ok := d.teamView(cfg, b, "crew", later.Add(time.Second)); !ok {
		t.Error("crew not read from the next pass's view")
	}
	// a pass that could not list the teams hands the groups their own observation
	d.setJudgesGroups(client.ObjectKeyFromObject(cfg), false)
	if _, ok := d.teamView(cfg, b, "crew", later.Add(time.Second)); ok {
		t.Error("a team view read after a pass failed to list the teams")
	}
}

// orgTeamsBackend lists its teams, and names a team "org:team" as team, as Docker Hub does.
type orgTeamsBackend struct{ listingTeamsBackend }

func (orgTeamsBackend) ListedTeamName(team string) (string, error) {
	if _, t, ok := strings.Cut(team, ":"); ok {
		return t, nil
	}
	return team, nil
}

// Members at rest that wait for a pass (after a restart, a config change) are no burst of
// new people: a new member that comes meanwhile is looked up at once, and a member at
// rest waits for a pass at most listingWaitMax, then is looked up (review 82 F3, F8).
func TestRestingMembersWaitForAPassApart(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme", UID: "u1"}}
	d := &DriftQueue{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 * firstObservationBurst {
		if _, how := d.restingObservation(cfg, firstObsMember(i, t0.Add(-time.Hour)), t0); how != waitForListing {
			t.Fatalf("member at rest %d with no listing: %v, want it to wait for a pass", i, how)
		}
	}
	if _, how := d.firstObservation(cfg, firstObsMember(1000, t0), t0.Add(2*time.Second)); how != observeDirectly {
		t.Fatalf("a new member while members at rest wait: %v, want a direct observation", how)
	}
	if _, how := d.restingObservation(cfg, firstObsMember(0, t0.Add(-time.Hour)), t0.Add(listingWaitMax)); how != observeDirectly {
		t.Errorf("a member at rest that waited listingWaitMax: %v, want a direct observation", how)
	}
	cfg.Spec.ResyncInterval = &metav1.Duration{Duration: 24 * time.Hour}
	if w := restingWait(cfg); w > listingWaitMax+time.Second {
		t.Errorf("a member at rest waits %s before it looks again, want at most listingWaitMax", w)
	}
}

// An active member at rest that a fresh listing does not show reads that absence: the
// plan invites it back through EnsureMember, which looks the person up under every
// identity before it invites, so a lookup first would only repeat those searches (the
// 10,000 drift repair: two searches more per person, and again on each refusal). Not when
// the listing started before the member's last sync (review 85 F2: an invitation sent
// since, told as a repair), nor for a person SCIM found in the organization (review 85
// F1: adoption turned on would record them as provisioned): those are looked up.
func TestRestingMembersReadTheirAbsenceFromAFreshListing(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme", UID: "u1"}}
	d := &DriftQueue{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	listed := backend.Member{UserName: "p1@example.com", BackendID: "p1", Role: "member", State: backend.StateMember}
	d.remember(cfg, t0, plan.NewListing([]backend.Member{listed}))
	for _, c := range []struct {
		name   string
		i      int
		origin scimv1.MemberOrigin
		synced time.Time
		how    firstObservation
		state  backend.MemberState
	}{
		{"provisioned, absent, synced before the listing", 0, scimv1.OriginProvisioned, t0.Add(-time.Minute), observedInListing, backend.StateAbsent},
		{"adopted, absent, synced before the listing", 0, scimv1.OriginAdopted, t0.Add(-time.Minute), observedInListing, backend.StateAbsent},
		{"provisioned, listed", 1, scimv1.OriginProvisioned, t0.Add(-time.Minute), observedInListing, backend.StateMember},
		{"provisioned, absent, synced (invited) after the listing started", 0, scimv1.OriginProvisioned, t0, observeDirectly, ""},
		{"preexisting, absent", 0, scimv1.OriginPreexisting, t0.Add(-time.Minute), observeDirectly, ""},
	} {
		m := firstObsMember(c.i, t0.Add(-time.Hour))
		m.Spec.Active = true
		m.Status.Origin = c.origin
		m.Status.LastSyncTime = &metav1.Time{Time: c.synced}
		obs, how := d.restingObservation(cfg, m, t0.Add(time.Second))
		if how != c.how || obs.State != c.state {
			t.Errorf("%s: %v %+v, want %v %q", c.name, how, obs, c.how, c.state)
		}
	}
}
