package scimstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/membership"
	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore/convert"
)

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// FieldOwner is the field manager of every write of the SCIM server.
const FieldOwner = convert.FieldOwner

// Conversions, re-exported for callers of the store.
var (
	UserToSCIM        = convert.UserToSCIM
	UserSpecFromSCIM  = convert.UserSpecFromSCIM
	GroupToSCIM       = convert.GroupToSCIM
	GroupSpecFromSCIM = convert.GroupSpecFromSCIM
	Version           = convert.Version
)

// Store reads SCIM resources from the cache and writes them through the API server.
type Store struct {
	// Client is the manager's client: reads from the cache, writes to the API server.
	Client client.Client
	// APIReader reads from the API server (read-your-writes fallback).
	APIReader client.Reader
	Log       logr.Logger
	// WriteTimeout bounds each API server write (default 10s; at most half the name
	// claims' grace, less a second: a longer one is cut to that).
	WriteTimeout time.Duration
	// CacheWait bounds the wait for the cache to show a write (default 3s).
	CacheWait time.Duration
	// Order, when set (NewMemberOrder on the manager's cache), answers the unfiltered
	// /Users pages from the ordered ids of the members instead of listing and sorting the
	// config's members per request.
	Order *MemberOrder
	// Indexes, when set (index.Of the manager's cache), is the cache's compact indexes
	// (userName, externalId): waitCache waits for them to show a write too.
	Indexes *index.Cache
}

// Scope is one ScimConfig as seen by a request.
type Scope struct {
	Config *scimv1.ScimConfig
	// BaseURL is the absolute SCIM base URL of the config, for meta.location.
	BaseURL string
}

func (s Scope) ns() string   { return s.Config.Namespace }
func (s Scope) name() string { return s.Config.Name }

var idRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidID tells whether id can name an object of ours.
func ValidID(id string) bool { return idRE.MatchString(id) }

// APIError maps an API server error to a SCIM error.
func APIError(err error, what string) error {
	if err == nil {
		return nil
	}
	var se *scim.Error
	if errors.As(err, &se) {
		return se
	}
	unavailable := &scim.Error{Status: 503, Detail: "the Kubernetes API server is unavailable, retry later", RetryAfter: 5}
	switch {
	case apierrors.IsNotFound(err):
		return scim.NotFound("%s not found", what)
	case apierrors.IsAlreadyExists(err):
		return scim.Errorf(409, scim.ErrUniqueness, "%s already exists", what)
	case apierrors.IsInvalid(err):
		var st apierrors.APIStatus
		if errors.As(err, &st) && st.Status().Details != nil && len(st.Status().Details.Causes) > 0 {
			var parts []string
			for _, c := range st.Status().Details.Causes {
				f := strings.TrimPrefix(c.Field, "spec.")
				parts = append(parts, strings.TrimSpace(f+": "+c.Message))
			}
			return scim.BadRequest(scim.ErrInvalidValue, "%s", strings.Join(parts, "; "))
		}
		return scim.BadRequest(scim.ErrInvalidValue, "%s is invalid", what)
	case apierrors.IsConflict(err):
		return scim.Errorf(412, "", "%s was changed by someone else (version mismatch)", what)
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return unavailable
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		// The API server refused the operator's own credentials or rights, not the
		// client's: a kube-apiserver that is starting answers so until its authenticators
		// and RBAC are ready. The client retries; the log names a lasting misconfiguration.
		return &scim.Error{Status: 503, RetryAfter: 5,
			Detail: "the Kubernetes API server refused the operator's request (" + string(apierrors.ReasonForError(err)) + "), retry later"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return unavailable
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		return unavailable
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return &scim.Error{Status: 500, Detail: "the Kubernetes API server refused the request: " + string(apierrors.ReasonForError(err))}
	}
	return unavailable
}

func (s *Store) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.WriteTimeout
	if d <= 0 {
		d = 10 * time.Second
	}
	// A claim whose holder does not carry its name yet is taken over after claimGrace:
	// no write may outlast half of it, so a writer still working is never overtaken. (The
	// grace is measured against the claim's acquiredAt, written with this replica's
	// clock and read with another's: the replicas' clocks are assumed to agree within the
	// other half, which NTP-synchronised nodes do by far.)
	if max := claimGrace/2 - time.Second; d > max {
		d = max
	}
	return context.WithTimeout(ctx, d)
}

// waitCache waits (bounded) until the cache shows obj at resourceVersion rv, or gone when
// rv is empty, so that the same client's next read sees its write. It tells whether it did.
func (s *Store) waitCache(ctx context.Context, obj client.Object, rv string) bool {
	d := s.CacheWait
	if d <= 0 {
		d = 3 * time.Second
	}
	key := client.ObjectKeyFromObject(obj)
	probe := obj.DeepCopyObject().(client.Object)
	// (a cache read costs microseconds; the watch usually delivers the write within a few
	// milliseconds, which a coarser poll would round up on every write)
	return wait.PollUntilContextTimeout(ctx, 2*time.Millisecond, d, true, func(ctx context.Context) (bool, error) {
		return s.cacheShows(ctx, key, probe, obj, rv), nil
	}) == nil
}

// cacheShows is one look of waitCache: whether the cache, the pages' order and the compact
// indexes show obj at rv (gone when rv is empty). probe is read into.
func (s *Store) cacheShows(ctx context.Context, key client.ObjectKey, probe, obj client.Object, rv string) bool {
	err := s.Client.Get(ctx, key, probe)
	var shown bool
	if rv == "" { // a delete: gone, or terminating behind a finalizer
		shown = apierrors.IsNotFound(err) || (err == nil && probe.GetDeletionTimestamp() != nil)
	} else {
		shown = err == nil && atLeast(probe.GetResourceVersion(), rv)
	}
	if m, ok := probe.(*scimv1.OrgMember); shown && ok && s.Order.caughtUp() {
		// the pages' order follows the cache a moment later (its event handler)
		if err != nil {
			m = nil
		}
		shown = s.Order.shows(key.Namespace, key.Name, m)
	}
	if shown {
		// so do the compact indexes: the next lookup by a written value finds the write,
		// and one by a deleted object's values no longer names it
		if err == nil {
			shown = s.Indexes.Shows(probe, false)
		} else {
			shown = s.Indexes.Shows(obj, true)
		}
	}
	return shown
}

// atLeast tells whether the cache's version got is the written version want or a later
// one (a controller may write the object before the cache saw our write). Versions are
// compared with apimachinery's resourceversion.CompareResourceVersion (the API server's
// comparable-versions rule); one that
// is not well formed is only equal to itself.
func atLeast(got, want string) bool {
	if got == want {
		return true
	}
	c, err := resourceversion.CompareResourceVersion(got, want)
	return err == nil && c > 0
}

func stale(what string) error {
	return scim.Errorf(412, "", "%s has changed: the If-Match version is stale", what)
}

// --- Users -------------------------------------------------------------------------

// userRef names a user in error details.
func userRef(id string) string { return fmt.Sprintf("User %q", id) }

func (s *Store) getMember(ctx context.Context, sc Scope, id string) (*scimv1.OrgMember, error) {
	if !ValidID(id) {
		return nil, scim.NotFound("%s not found", userRef(id))
	}
	var m scimv1.OrgMember
	key := types.NamespacedName{Namespace: sc.ns(), Name: id}
	err := s.Client.Get(ctx, key, &m)
	if apierrors.IsNotFound(err) && s.APIReader != nil {
		err = s.APIReader.Get(ctx, key, &m)
	}
	if err != nil {
		return nil, s.apiError(err, userRef(id))
	}
	if m.Spec.ConfigName != sc.name() || !m.DeletionTimestamp.IsZero() {
		return nil, scim.NotFound("%s not found", userRef(id))
	}
	return &m, nil
}

// userResource renders a member with its groups (as readers see them: membership.In),
// under the version of that (userVersion).
func (s *Store) userResource(ctx context.Context, sc Scope, m *scimv1.OrgMember) scim.Resource {
	return s.userResourceFrom(ctx, s.Client, sc, m)
}

// userResourceFrom is userResource with the groups read through r: a write's answer reads
// them from the API server, so that the ETag it carries is the one the next conditional
// write is checked against, whatever this replica's group cache shows yet.
func (s *Store) userResourceFrom(ctx context.Context, rd client.Reader, sc Scope, m *scimv1.OrgMember) scim.Resource {
	groups := s.memberGroupsFrom(ctx, rd, sc, m)
	r := convert.UserToSCIMVersion(m, sc.BaseURL, versionWithGroups(m, groups))
	var gl []any
	for _, g := range groups {
		gl = append(gl, map[string]any{"value": g.Name, "display": g.Spec.DisplayName, "type": "direct", "$ref": sc.BaseURL + "/Groups/" + g.Name})
	}
	if gl != nil {
		r["groups"] = gl
	}
	return r
}

// userVersion is the version token of a user as readers see it: its spec and the groups
// it is in by membership.In (with their displayNames), so that it moves with the commit
// of a membership change, not with the labels that finish it.
func (s *Store) userVersion(ctx context.Context, sc Scope, m *scimv1.OrgMember) string {
	return versionWithGroups(m, s.memberGroups(ctx, sc, m))
}

// userVersionLive is userVersion with the groups read from the API server, for a member
// read from it: a replica whose group cache lags must not refuse a current tag.
func (s *Store) userVersionLive(ctx context.Context, sc Scope, m *scimv1.OrgMember) string {
	return versionWithGroups(m, s.memberGroupsFrom(ctx, s.APIReader, sc, m))
}

func versionWithGroups(m *scimv1.OrgMember, groups []scimv1.OrgGroup) string {
	shown := make([]string, 0, len(groups))
	for _, g := range groups {
		shown = append(shown, g.Name+"\x00"+g.Spec.DisplayName)
	}
	return convert.VersionWith(m, shown)
}

// GetUser returns one user of the scope.
func (s *Store) GetUser(ctx context.Context, sc Scope, id string) (scim.Resource, error) {
	m, err := s.getMember(ctx, sc, id)
	if err != nil {
		return nil, err
	}
	return s.userResource(ctx, sc, m), nil
}

// ListUsers returns the scope's users matching f (nil: all), unsorted.
func (s *Store) ListUsers(ctx context.Context, sc Scope, f *scim.Filter) ([]scim.Resource, error) {
	var list scimv1.OrgMemberList
	opts := []client.ListOption{client.InNamespace(sc.ns())}
	var byID string
	switch {
	case f == nil:
		opts = append(opts, client.MatchingFields{index.Config: sc.name()})
	default:
		if v, ok := f.EqualityValue("userName"); ok {
			opts = append(opts, client.MatchingFields{index.UserName: index.Key(sc.name(), naming.NameKey(v))})
		} else if v, ok := f.EqualityValue("externalId"); ok {
			opts = append(opts, client.MatchingFields{index.ExternalID: index.Key(sc.name(), v)})
		} else if v, ok := f.EqualityValue("id"); ok {
			byID = v
		} else {
			opts = append(opts, client.MatchingFields{index.Config: sc.name()})
		}
	}
	if byID != "" {
		m, err := s.getMember(ctx, sc, byID)
		if err != nil {
			var se *scim.Error
			if errors.As(err, &se) && se.Status == 404 {
				return nil, nil
			}
			return nil, err
		}
		list.Items = []scimv1.OrgMember{*m}
	} else if err := s.Client.List(ctx, &list, opts...); err != nil {
		return nil, s.apiError(err, "Users")
	}
	out := make([]scim.Resource, 0, len(list.Items))
	for i := range list.Items {
		m := &list.Items[i]
		if m.Spec.ConfigName != sc.name() || !m.DeletionTimestamp.IsZero() {
			continue
		}
		r := s.userResource(ctx, sc, m)
		if f == nil || f.Match(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// ListUsersPage returns the 1-based page [start, start+count) of all the scope's users in
// the default list order (by id, as scim.SortResources orders them without sortBy) and the
// number of users. Unlike ListUsers it orders the cached OrgMembers by name (the id) and
// converts only the members of the page, so paging through a large organization costs
// the page, not the organization. start < 1 counts as 1, count < 0 as 0.
func (s *Store) ListUsersPage(ctx context.Context, sc Scope, start, count int) ([]scim.Resource, int, error) {
	start = max(start, 1)
	count = max(count, 0)
	if s.Order.caughtUp() {
		ids, total := s.Order.page(sc.ns(), sc.name(), start, count)
		return s.usersOf(ctx, sc, ids), total, nil
	}
	var list scimv1.OrgMemberList
	// The cache's objects are shared: they are only read, sorted by pointer and converted
	// here (the conversion only reads, as for usersOf).
	if err := s.Client.List(ctx, &list, client.InNamespace(sc.ns()),
		client.MatchingFields{index.Config: sc.name()}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, 0, s.apiError(err, "Users")
	}
	members := make([]*scimv1.OrgMember, 0, len(list.Items))
	for i := range list.Items {
		m := &list.Items[i]
		if m.Spec.ConfigName != sc.name() || !m.DeletionTimestamp.IsZero() {
			continue
		}
		members = append(members, m)
	}
	slices.SortStableFunc(members, func(a, b *scimv1.OrgMember) int { return strings.Compare(a.Name, b.Name) })
	total := len(members)
	page := []scim.Resource{}
	if start > total {
		return page, total, nil
	}
	for _, m := range members[start-1 : min(start-1+count, total)] {
		page = append(page, s.userResource(ctx, sc, m))
	}
	return page, total, nil
}

// usersOf reads the members ids (the order's) from the cache and converts them; one that
// is gone or being deleted since is left out (the page was cut a moment before). The
// members are the cache's own objects where the order can reach its store, which the
// conversion only reads.
func (s *Store) usersOf(ctx context.Context, sc Scope, ids []string) []scim.Resource {
	page := make([]scim.Resource, 0, len(ids))
	for _, id := range ids {
		m, shared := s.Order.cached(sc.ns(), id)
		if !shared {
			m = &scimv1.OrgMember{}
			if err := s.Client.Get(ctx, types.NamespacedName{Namespace: sc.ns(), Name: id}, m); err != nil {
				continue
			}
		}
		if m == nil || m.Spec.ConfigName != sc.name() || !m.DeletionTimestamp.IsZero() {
			continue
		}
		page = append(page, s.userResource(ctx, sc, m))
	}
	return page
}

func checkDomain(cfg *scimv1.ScimConfig, userName string) error {
	if len(cfg.Spec.VerifiedDomains) == 0 {
		return nil
	}
	_, domain, ok := strings.Cut(userName, "@")
	if ok {
		domain = strings.ToLower(strings.TrimSpace(domain))
		for _, d := range cfg.Spec.VerifiedDomains {
			if strings.EqualFold(d, domain) {
				return nil
			}
		}
	}
	return scim.BadRequest(scim.ErrInvalidValue, "userName %q is not in a verified domain of this organization; allowed domains: %s",
		userName, strings.Join(cfg.Spec.VerifiedDomains, ", "))
}

// userNameTaken tells whether another member of the scope already has userName.
func (s *Store) userNameTaken(ctx context.Context, sc Scope, userName, exceptID string) (bool, error) {
	var list scimv1.OrgMemberList
	if err := s.Client.List(ctx, &list, client.InNamespace(sc.ns()),
		client.MatchingFields{index.UserName: index.Key(sc.name(), naming.NameKey(userName))}); err != nil {
		return false, s.apiError(err, "Users")
	}
	for _, m := range list.Items {
		if m.Name != exceptID && m.Spec.ConfigName == sc.name() && m.DeletionTimestamp.IsZero() {
			return true, nil
		}
	}
	return false, nil
}

// stillDeleting answers a create whose name is held by a resource being deleted (its
// finalizer waits for the controller to take its access away): 503 with Retry-After, as
// GET already hides it.
func stillDeleting(what, name string) error {
	return &scim.Error{Status: 503, RetryAfter: 10, Detail: fmt.Sprintf(what+" is still being deleted; retry later", name)}
}

func conflictUserName(userName string) error {
	return scim.Errorf(409, scim.ErrUniqueness, "a user with userName %q already exists", userName)
}

// maxNameAttempts bounds the alternative names tried when a userName's derived name is
// held by a member that was renamed since.
const maxNameAttempts = 4

func memberName(config, userName string, attempt int) string {
	if attempt == 0 {
		return naming.MemberName(config, userName)
	}
	return naming.MemberName(config, fmt.Sprintf("%s\x00%d", userName, attempt))
}

// CreateUser creates a user. Under the object name derived from its userName, the member
// is written first and holds the name by that object alone (one write: the API server
// gives the object name to one create only); its userName's claim is then read live, so a
// concurrent rename to the same name (which claims first, then reads this object name) and
// this create cannot both win (see claimlessVerdict). When the derived object name is held
// by a member renamed since, the userName is claimed first and the member written under
// another object name (createClaimed).
func (s *Store) CreateUser(ctx context.Context, sc Scope, r scim.Resource) (scim.Resource, error) {
	spec, hasActive, err := UserSpecFromSCIM(r)
	if err != nil {
		return nil, err
	}
	if !hasActive {
		spec.Active = true
	}
	spec.ConfigName = sc.name()
	if err := checkDomain(sc.Config, spec.UserName); err != nil {
		return nil, err
	}
	if taken, err := s.userNameTaken(ctx, sc, spec.UserName, ""); err != nil {
		return nil, err
	} else if taken {
		return nil, conflictUserName(spec.UserName)
	}
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	taken := func() error { return conflictUserName(spec.UserName) }
	deleting := func() error { return stillDeleting("a user with userName %q", spec.UserName) }
	for tries := 0; tries < 3; tries++ {
		m := newMember(sc, spec, 0)
		err := s.Client.Create(wctx, m, client.FieldOwner(FieldOwner))
		if err == nil {
			// the wait for the cache overlaps the claim's read; the answer waits for both
			written := time.Now()
			var cacheWait time.Duration
			var shown bool
			cached := make(chan struct{})
			cctx, stop := context.WithCancel(ctx)
			go func() {
				defer close(cached)
				shown = s.waitCache(cctx, m, m.ResourceVersion)
				cacheWait = time.Since(written)
			}()
			// the member exists: judging it is part of the write that made it, whether or not
			// the client is still there (a member whose create lost must not stay)
			jctx, jcancel := s.writeCtx(context.WithoutCancel(ctx))
			err := s.settleClaimless(jctx, sc, m)
			claimRead := time.Since(written)
			jcancel()
			if err != nil {
				stop()
				<-cached
				if s.dropLoser(ctx, m) {
					// the loser is gone (or terminating) in this replica's cache before the
					// answer, so that the client's next filter shows the winner only (make test
					// caught a filter counting both, once in 40 rounds of a rename racing a create)
					s.waitCache(ctx, m, "")
				}
				return nil, err
			}
			<-cached
			stop()
			if shown { // (a wait cut short by the client, or by its bound, timed nothing)
				metrics.CreateWait.WithLabelValues(metrics.CreateClaimRead).Observe(claimRead.Seconds())
				metrics.CreateWait.WithLabelValues(metrics.CreateCache).Observe(cacheWait.Seconds())
			}
			return s.userResource(ctx, sc, m), nil
		}
		if !apierrors.IsAlreadyExists(err) {
			if !definite(err) {
				// the create may have committed (a timeout, a 5xx): the member it may have
				// written is judged until a verdict comes (judgeUnknown)
				s.judgeUnknown(wctx, sc, m)
			}
			return nil, s.apiError(err, userRef(m.Name))
		}
		var existing scimv1.OrgMember
		if gerr := s.APIReader.Get(wctx, client.ObjectKeyFromObject(m), &existing); gerr != nil {
			if apierrors.IsNotFound(gerr) {
				continue // deleted in between: try the same name again
			}
			return nil, s.apiError(gerr, userRef(m.Name))
		}
		if carries(&existing, sc, spec.UserName) {
			if !existing.DeletionTimestamp.IsZero() {
				return nil, deleting()
			}
			return nil, taken()
		}
		// the derived name is held by a member renamed since
		return s.createClaimed(ctx, wctx, sc, spec)
	}
	return nil, taken()
}

// judgeUnknown judges the member a claimless create may have written, when the write's
// outcome is unknown (a timeout, a 5xx): read live, a member under m's name that carries
// its userName is deleted when the name's claim is held by another holder carrying the
// name, as the create would have done with an answer. Only that verdict deletes: the
// member may be another request's (the IdP's retry of this one, answered 201), and a
// member answered 201 never meets such a claim (every claim writer reads the derived
// object name after its claim, and yields to it). A failed read, or a claim in flight,
// is judged again in the background, with backoff, for the claims' grace; so is a member
// not found yet (a write whose answer was lost can still commit).
func (s *Store) judgeUnknown(ctx context.Context, sc Scope, m *scimv1.OrgMember) {
	judge := func(ctx context.Context) error {
		var live scimv1.OrgMember
		if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(m), &live); err != nil {
			if apierrors.IsNotFound(err) {
				// not committed, or not yet: a write whose answer was lost may still commit
				// (the API server's own timeout), so it is looked for again for a while
				return errNotWritten
			}
			return err
		}
		if !carries(&live, sc, m.Spec.UserName) || !live.DeletionTimestamp.IsZero() {
			return nil
		}
		v, err := s.claimlessVerdict(ctx, sc, scimv1.NameClaimUser, live.Spec.UserName, holderRef{name: live.Name, uid: live.UID})
		switch {
		case err != nil:
			return err
		case v == nameInFlight:
			return errInFlight
		case v == nameHeld || v == nameDeleting:
			s.dropLoser(ctx, &live)
		}
		return nil
	}
	s.tryThenRetry(ctx, judge, "could not judge a user whose create's outcome is unknown; if a concurrent rename took its userName, both hold it",
		"namespace", m.Namespace, "member", m.Name)
}

var (
	errInFlight   = errors.New("a write of the name is in flight")
	errNotWritten = errors.New("the object is not there (yet)")
)

// carries tells whether m is a member of the scope's config with userName (as names are
// compared: naming.NameKey).
func carries(m *scimv1.OrgMember, sc Scope, userName string) bool {
	return m.Spec.ConfigName == sc.name() && naming.NameKey(m.Spec.UserName) == naming.NameKey(userName)
}

func newMember(sc Scope, spec scimv1.OrgMemberSpec, attempt int) *scimv1.OrgMember {
	m := &scimv1.OrgMember{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: sc.ns(), Name: memberName(sc.name(), spec.UserName, attempt),
			Labels: map[string]string{scimv1.LabelConfig: sc.name()},
			// the controllers would add it with a write of their own before granting
			// anything: the create carries it
			Finalizers: []string{scimv1.FinalizerDeprovision},
		},
		Spec: spec,
	}
	convert.Touch(m, time.Now())
	return m
}

// createClaimed creates a user whose derived object name is held by a member renamed
// since: its userName is claimed first (claim), and the member written under the next
// object name free (the claim moving with it). Concurrent writers of one userName, creates
// and renames, on any replica, race for one OrgNameClaim and the API server lets exactly
// one win; the others get 409. A member that holds the name without a claim, under the
// derived object name, is looked for once the claim is written (derivedHolder).
func (s *Store) createClaimed(ctx, wctx context.Context, sc Scope, spec scimv1.OrgMemberSpec) (scim.Resource, error) {
	taken := func() error { return conflictUserName(spec.UserName) }
	deleting := func() error { return stillDeleting("a user with userName %q", spec.UserName) }
	attempt := 1
	c, err := s.claim(wctx, sc, scimv1.NameClaimUser, spec.UserName, holderRef{name: memberName(sc.name(), spec.UserName, attempt)}, taken, deleting)
	if err != nil {
		return nil, err
	}
	if err := s.derivedHolder(wctx, sc, spec.UserName, ""); err != nil {
		s.release(context.WithoutCancel(wctx), sc, scimv1.NameClaimUser, spec.UserName, holderRef{name: c.Spec.Holder}, c.ResourceVersion)
		return nil, err
	}
	for tries := 0; attempt < maxNameAttempts && tries < 2*maxNameAttempts; tries++ {
		m := newMember(sc, spec, attempt)
		err := s.Client.Create(wctx, m, client.FieldOwner(FieldOwner))
		if err == nil {
			// the claim's binding and the wait for the cache overlap (each costs a round
			// trip); the answer waits for both
			bound := make(chan struct{})
			go func() {
				defer close(bound)
				s.bindClaim(wctx, c, holderRef{name: m.Name, uid: m.UID})
			}()
			s.waitCache(ctx, m, m.ResourceVersion)
			<-bound
			return s.userResource(ctx, sc, m), nil
		}
		if !apierrors.IsAlreadyExists(err) {
			if definite(err) {
				s.release(context.WithoutCancel(wctx), sc, scimv1.NameClaimUser, spec.UserName, holderRef{name: m.Name}, c.ResourceVersion)
				return nil, s.apiError(err, userRef(m.Name))
			}
			// the create may have committed (a timeout, a 5xx): the claim goes only when a
			// live read shows no member under the name; a member that carries it keeps it
			bg, cancel := s.writeCtx(context.WithoutCancel(wctx))
			defer cancel()
			var live scimv1.OrgMember
			gerr := s.APIReader.Get(bg, client.ObjectKeyFromObject(m), &live)
			switch {
			case apierrors.IsNotFound(gerr):
				s.release(bg, sc, scimv1.NameClaimUser, spec.UserName, holderRef{name: m.Name}, c.ResourceVersion)
			case gerr == nil && carries(&live, sc, spec.UserName):
				s.bindClaim(bg, c, holderRef{name: live.Name, uid: live.UID})
			}
			return nil, s.apiError(err, userRef(m.Name))
		}
		var existing scimv1.OrgMember
		if gerr := s.APIReader.Get(wctx, client.ObjectKeyFromObject(m), &existing); gerr != nil {
			if apierrors.IsNotFound(gerr) {
				continue // deleted in between: try the same name again
			}
			s.release(context.WithoutCancel(wctx), sc, scimv1.NameClaimUser, spec.UserName, holderRef{name: m.Name}, c.ResourceVersion)
			return nil, s.apiError(gerr, userRef(m.Name))
		}
		if carries(&existing, sc, spec.UserName) {
			// a member made without a claim (with kubectl) holds it: the claim is its own
			// from now on
			s.bindClaim(wctx, c, holderRef{name: existing.Name, uid: existing.UID})
			if !existing.DeletionTimestamp.IsZero() {
				return nil, deleting()
			}
			return nil, taken()
		}
		// this name too is held by a member renamed since: the claim moves to the next one
		attempt++
		if err := s.moveClaim(wctx, c, memberName(sc.name(), spec.UserName, attempt)); err != nil {
			// (conditional on the version before the move: a move that committed after all is
			// left to the claim's grace)
			s.release(context.WithoutCancel(wctx), sc, scimv1.NameClaimUser, spec.UserName, holderRef{name: c.Spec.Holder}, c.ResourceVersion)
			return nil, s.moveClaimError(err, taken)
		}
	}
	s.release(context.WithoutCancel(wctx), sc, scimv1.NameClaimUser, spec.UserName, holderRef{name: c.Spec.Holder}, c.ResourceVersion)
	return nil, taken()
}

// ReplaceUser implements PUT. A body without "active" leaves active unchanged.
func (s *Store) ReplaceUser(ctx context.Context, sc Scope, id string, r scim.Resource, ifMatch string) (scim.Resource, error) {
	spec, hasActive, err := UserSpecFromSCIM(r)
	if err != nil {
		return nil, err
	}
	return s.updateUser(ctx, sc, id, ifMatch, func(cur *scimv1.OrgMember) (scimv1.OrgMemberSpec, error) {
		next := spec
		next.ConfigName = cur.Spec.ConfigName
		if !hasActive {
			next.Active = cur.Spec.Active
		}
		return next, nil
	})
}

// PatchUser implements PATCH.
func (s *Store) PatchUser(ctx context.Context, sc Scope, id string, ops []scim.PatchOp, ifMatch string) (scim.Resource, error) {
	return s.updateUser(ctx, sc, id, ifMatch, func(cur *scimv1.OrgMember) (scimv1.OrgMemberSpec, error) {
		res := UserToSCIM(cur, sc.BaseURL)
		if _, err := scim.ApplyPatch(scim.UserType, res, ops); err != nil {
			return scimv1.OrgMemberSpec{}, err
		}
		next, hasActive, err := UserSpecFromSCIM(res)
		if err != nil {
			return next, err
		}
		next.ConfigName = cur.Spec.ConfigName
		if !hasActive {
			next.Active = cur.Spec.Active
		}
		return next, nil
	})
}

func (s *Store) updateUser(ctx context.Context, sc Scope, id, ifMatch string, mutate func(*scimv1.OrgMember) (scimv1.OrgMemberSpec, error)) (res scim.Resource, err error) {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	// The userNames claimed for a rename (with the claims' versions): all but the one the
	// member carries in the end are released, and so is its old name's claim, at the
	// version read before the write (oldRV), so a rename back that renewed it meanwhile
	// keeps it. When the write's outcome is unknown (a timeout, a 5xx: it may have
	// committed), the member is read live to learn which name it carries; when that read
	// fails too, nothing is released (the grace logic of claims takes over).
	claimed := map[string]string{}
	var oldRV string
	var from, to *scimv1.OrgMember
	unsure := false
	defer func() {
		if len(claimed) == 0 || from == nil {
			return
		}
		written := ""
		if err == nil && to != nil {
			written = to.Spec.UserName
		}
		settleRenameClaims(s, context.WithoutCancel(wctx), sc, scimv1.NameClaimUser, from, from.Spec.UserName, written, unsure,
			func(live *scimv1.OrgMember) string { return live.Spec.UserName }, claimed, oldRV)
	}()
	fresh := false
	for try := 0; ; try++ {
		var cur *scimv1.OrgMember
		var err error
		if fresh {
			cur = &scimv1.OrgMember{}
			if err = s.APIReader.Get(wctx, types.NamespacedName{Namespace: sc.ns(), Name: id}, cur); err == nil &&
				(cur.Spec.ConfigName != sc.name() || !cur.DeletionTimestamp.IsZero()) {
				err = scim.NotFound("%s not found", userRef(id))
			}
			err = s.apiError(err, userRef(id))
		} else {
			cur, err = s.getMember(wctx, sc, id)
		}
		if err != nil {
			return nil, err
		}
		from, oldRV = cur, ""
		version := s.userVersion
		if fresh {
			version = s.userVersionLive
		}
		if ifMatch != "" && version(wctx, sc, cur) != ifMatch {
			if !fresh {
				fresh = true // the cache may lag behind the version the client saw
				continue
			}
			return nil, stale(userRef(id))
		}
		next, err := mutate(cur)
		if err != nil {
			return nil, err
		}
		if naming.NameKey(next.UserName) != naming.NameKey(cur.Spec.UserName) {
			if err := checkDomain(sc.Config, next.UserName); err != nil {
				return nil, err
			}
			if taken, err := s.userNameTaken(wctx, sc, next.UserName, cur.Name); err != nil {
				return nil, err
			} else if taken {
				return nil, conflictUserName(next.UserName)
			}
			// the API server decides who gets the new name: claim it before the write
			h := holderRef{name: cur.Name, uid: cur.UID}
			c, err := s.claim(wctx, sc, scimv1.NameClaimUser, next.UserName, h,
				func() error { return conflictUserName(next.UserName) },
				func() error { return stillDeleting("a user with userName %q", next.UserName) })
			if err != nil {
				return nil, err
			}
			claimed[next.UserName] = c.ResourceVersion
			// a user holding the name by its derived object name, without a claim
			if err := s.derivedHolder(wctx, sc, next.UserName, cur.Name); err != nil {
				return nil, err
			}
			oldRV = s.claimVersion(wctx, sc, scimv1.NameClaimUser, cur.Spec.UserName, h)
		}
		updated := cur.DeepCopy()
		updated.Spec = next
		if equalJSON(cur.Spec, next) {
			// (the groups read where cur was: one view, one version)
			rd := client.Reader(s.Client)
			if fresh {
				rd = s.APIReader
			}
			return s.userResourceFrom(ctx, rd, sc, cur), nil
		}
		convert.Touch(updated, time.Now())
		// The optimistic lock is on the resourceVersion, which the controllers' status
		// writes move too: on a conflict, read again and check If-Match again.
		err = s.Client.Patch(wctx, updated, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner))
		if apierrors.IsConflict(err) {
			if try < 5 {
				fresh = true
				continue
			}
		}
		if err != nil {
			unsure = !definite(err)
			return nil, s.apiError(err, userRef(id))
		}
		to = updated
		s.waitCache(ctx, updated, updated.ResourceVersion)
		return s.userResourceFrom(ctx, s.APIReader, sc, updated), nil
	}
}

// definite tells whether a failed write certainly did not commit: the API server refused
// it. A timeout, a 5xx or a lost connection may have committed it.
func definite(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err) ||
		apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsUnauthorized(err) || apierrors.IsGone(err) || apierrors.IsRequestEntityTooLargeError(err)
}

func equalJSON(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}

// DeleteUser deletes the OrgMember. With If-Match, the version token is checked against
// the API server (never refused on a lagging cache alone) and the delete is conditional on
// the resourceVersion that carried it.
func (s *Store) DeleteUser(ctx context.Context, sc Scope, id, ifMatch string) error {
	m, err := s.getMember(ctx, sc, id)
	if err != nil {
		return err
	}
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	for try := 0; ; try++ {
		pre := metav1.Preconditions{UID: &m.UID}
		if ifMatch != "" {
			if try > 0 || s.userVersion(wctx, sc, m) != ifMatch {
				fresh := &scimv1.OrgMember{}
				if err := s.APIReader.Get(wctx, client.ObjectKeyFromObject(m), fresh); err != nil {
					if apierrors.IsNotFound(err) {
						return nil
					}
					return s.apiError(err, userRef(id))
				}
				if fresh.UID != m.UID || s.userVersionLive(wctx, sc, fresh) != ifMatch {
					return stale(userRef(id))
				}
				m = fresh
			}
			pre.ResourceVersion = &m.ResourceVersion
		}
		err = s.Client.Delete(wctx, m, client.Preconditions(pre))
		if apierrors.IsConflict(err) && ifMatch != "" && try < 5 {
			continue
		}
		if apierrors.IsConflict(err) {
			return stale(userRef(id))
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return s.apiError(err, userRef(id))
		}
		s.waitCache(ctx, m, "")
		return nil
	}
}

// --- Groups ------------------------------------------------------------------------

func groupRef(id string) string { return fmt.Sprintf("Group %q", id) }

func (s *Store) getGroup(ctx context.Context, sc Scope, id string) (*scimv1.OrgGroup, error) {
	g, _, err := s.getGroupFrom(ctx, sc, id)
	return g, err
}

// getGroupFrom is getGroup, and whether the group was read from the API server because
// the cache did not have it (a cache that is behind: its members are read live too).
func (s *Store) getGroupFrom(ctx context.Context, sc Scope, id string) (*scimv1.OrgGroup, bool, error) {
	if !ValidID(id) {
		return nil, false, scim.NotFound("%s not found", groupRef(id))
	}
	var g scimv1.OrgGroup
	key := types.NamespacedName{Namespace: sc.ns(), Name: id}
	err := s.Client.Get(ctx, key, &g)
	live := false
	if apierrors.IsNotFound(err) && s.APIReader != nil {
		err, live = s.APIReader.Get(ctx, key, &g), true
	}
	if err != nil {
		return nil, false, s.apiError(err, groupRef(id))
	}
	if g.Spec.ConfigName != sc.name() || !g.DeletionTimestamp.IsZero() {
		return nil, false, scim.NotFound("%s not found", groupRef(id))
	}
	return &g, live, nil
}

func (s *Store) groupResource(ctx context.Context, sc Scope, g *scimv1.OrgGroup, withMembers bool) (scim.Resource, error) {
	return s.groupAnswer(ctx, sc, g, withMembers, false)
}

// groupAnswer is groupResource with the members read from the API server when live (the
// cache is behind the group: it came from the API server, or the cache did not show a
// write in time), so that a group is never shown with the members of an older version.
func (s *Store) groupAnswer(ctx context.Context, sc Scope, g *scimv1.OrgGroup, withMembers, live bool) (scim.Resource, error) {
	var members []scimv1.OrgMember
	if withMembers {
		var err error
		if live {
			members, err = s.groupMembersLive(ctx, sc, g)
		} else {
			members, err = s.GroupMembers(ctx, sc, g)
		}
		if err != nil {
			return nil, err
		}
	}
	return GroupToSCIM(g, members, withMembers, sc.BaseURL), nil
}

// GetGroup returns one group; members are looked up only when withMembers.
func (s *Store) GetGroup(ctx context.Context, sc Scope, id string, withMembers bool) (scim.Resource, error) {
	g, live, err := s.getGroupFrom(ctx, sc, id)
	if err != nil {
		return nil, err
	}
	return s.groupAnswer(ctx, sc, g, withMembers, live)
}

// ListGroups returns the scope's groups matching f.
func (s *Store) ListGroups(ctx context.Context, sc Scope, f *scim.Filter, withMembers bool) ([]scim.Resource, error) {
	var list scimv1.OrgGroupList
	opts := []client.ListOption{client.InNamespace(sc.ns())}
	if v, ok := eq(f, "displayName"); ok {
		opts = append(opts, client.MatchingFields{index.DisplayName: index.Key(sc.name(), naming.NameKey(v))})
	} else if v, ok := eq(f, "externalId"); ok {
		opts = append(opts, client.MatchingFields{index.ExternalID: index.Key(sc.name(), v)})
	} else {
		opts = append(opts, client.MatchingFields{index.Config: sc.name()})
	}
	if err := s.Client.List(ctx, &list, opts...); err != nil {
		return nil, s.apiError(err, "Groups")
	}
	out := make([]scim.Resource, 0, len(list.Items))
	for i := range list.Items {
		g := &list.Items[i]
		if g.Spec.ConfigName != sc.name() || !g.DeletionTimestamp.IsZero() {
			continue
		}
		r, err := s.groupResource(ctx, sc, g, withMembers)
		if err != nil {
			return nil, err
		}
		if f == nil || f.Match(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func eq(f *scim.Filter, attr string) (string, bool) {
	if f == nil {
		return "", false
	}
	return f.EqualityValue(attr)
}

func (s *Store) displayNameTaken(ctx context.Context, sc Scope, displayName, exceptID string) (bool, error) {
	var list scimv1.OrgGroupList
	if err := s.Client.List(ctx, &list, client.InNamespace(sc.ns()),
		client.MatchingFields{index.DisplayName: index.Key(sc.name(), naming.NameKey(displayName))}); err != nil {
		return false, s.apiError(err, "Groups")
	}
	for _, g := range list.Items {
		if g.Name != exceptID && g.Spec.ConfigName == sc.name() && g.DeletionTimestamp.IsZero() {
			return true, nil
		}
	}
	return false, nil
}

func conflictDisplayName(n string) error {
	return scim.Errorf(409, scim.ErrUniqueness, "a group with displayName %q already exists", n)
}

// checkMembers verifies that every id is a user of the scope (400 invalidValue otherwise).
func (s *Store) checkMembers(ctx context.Context, sc Scope, ids []string) error {
	var unknown []string
	for _, id := range ids {
		if _, err := s.getMember(ctx, sc, id); err != nil {
			var se *scim.Error
			if errors.As(err, &se) && se.Status == 404 {
				unknown = append(unknown, id)
				if len(unknown) >= 10 {
					break
				}
				continue
			}
			return err
		}
	}
	if len(unknown) > 0 {
		return scim.BadRequest(scim.ErrInvalidValue, "unknown member id(s): %s", strings.Join(unknown, ", "))
	}
	return nil
}

// CreateGroup creates a group with its members. The members are marked first and the
// group's creation commits them (package membership): a create that fails before it
// leaves no group and marks that mean nothing; one that fails after it leaves the whole
// group, which the finisher completes.
func (s *Store) CreateGroup(ctx context.Context, sc Scope, r scim.Resource) (scim.Resource, error) {
	spec, members, _, err := GroupSpecFromSCIM(r)
	if err != nil {
		return nil, err
	}
	spec.ConfigName = sc.name()
	if err := s.checkMembers(ctx, sc, members); err != nil {
		return nil, err
	}
	if taken, err := s.displayNameTaken(ctx, sc, spec.DisplayName, ""); err != nil {
		return nil, err
	} else if taken {
		return nil, conflictDisplayName(spec.DisplayName)
	}
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	groupName := func(attempt int) string {
		if attempt > 0 {
			return naming.GroupName(sc.name(), fmt.Sprintf("%s\x00%d", spec.DisplayName, attempt))
		}
		return naming.GroupName(sc.name(), spec.DisplayName)
	}
	taken := func() error { return conflictDisplayName(spec.DisplayName) }
	deleting := func() error { return stillDeleting("a group with displayName %q", spec.DisplayName) }
	var claim *scimv1.OrgNameClaim
	release := func(holder string) {
		s.release(context.WithoutCancel(wctx), sc, scimv1.NameClaimGroup, spec.DisplayName, holderRef{name: holder}, claim.ResourceVersion)
	}
	// the displayName is claimed first (see CreateUser)
	claim, err = s.claim(wctx, sc, scimv1.NameClaimGroup, spec.DisplayName, holderRef{name: groupName(0)}, taken, deleting)
	if err != nil {
		return nil, err
	}
	var g *scimv1.OrgGroup
	var ch *change
	races := 0
	for attempt := 0; attempt < maxNameAttempts && g == nil; {
		name := groupName(attempt)
		// A group under this name already (the IdP creating a group it has, or a group
		// renamed since it was created under this name) is found before any member is
		// marked: marking would write to each of its members only to be dropped.
		var existing scimv1.OrgGroup
		gerr := s.APIReader.Get(wctx, types.NamespacedName{Namespace: sc.ns(), Name: name}, &existing)
		if gerr != nil && !apierrors.IsNotFound(gerr) {
			release(name)
			return nil, s.apiError(gerr, groupRef(name))
		}
		if gerr == nil {
			if naming.NameKey(existing.Spec.DisplayName) == naming.NameKey(spec.DisplayName) && existing.Spec.ConfigName == sc.name() {
				// a group made without a claim holds it: the claim is its own from now on
				s.bindClaim(wctx, claim, holderRef{name: existing.Name, uid: existing.UID})
				if !existing.DeletionTimestamp.IsZero() {
					return nil, deleting()
				}
				return nil, taken()
			}
			attempt++
			if err := s.moveClaim(wctx, claim, groupName(attempt)); err != nil {
				release(claim.Spec.Holder) // (see CreateUser)
				return nil, s.moveClaimError(err, taken)
			}
			continue
		}
		// Mark the members under this name, every one of them (a delete of an earlier
		// group of this name may still be stripping its labels: a label is not counted
		// on). A member still labelled for that group and not wanted is marked out.
		ch, err = s.marks(wctx, sc, name, &scim.MemberDelta{Clear: true, Add: members}, true)
		if err != nil {
			release(name)
			return nil, err
		}
		cand := &scimv1.OrgGroup{
			ObjectMeta: metav1.ObjectMeta{Namespace: sc.ns(), Name: name, Labels: map[string]string{scimv1.LabelConfig: sc.name()}},
			Spec:       spec,
		}
		if !ch.empty() {
			// the create commits the marked members (package membership)
			cand.Annotations = map[string]string{scimv1.AnnotationMembersChange: ch.id}
		}
		convert.Touch(cand, time.Now())
		err = s.Client.Create(wctx, cand, client.FieldOwner(FieldOwner))
		if err == nil {
			g = cand
			break
		}
		if !apierrors.IsAlreadyExists(err) {
			if definite(err) {
				s.dropMarks(sc.ns(), ch.id)
				release(name)
				return nil, s.apiError(err, groupRef(name))
			}
			// the create may have committed (see CreateUser): the claim goes only when a
			// live read shows no group under the name
			bg, cancel := s.writeCtx(context.WithoutCancel(wctx))
			defer cancel()
			var live scimv1.OrgGroup
			gerr := s.APIReader.Get(bg, client.ObjectKeyFromObject(cand), &live)
			switch {
			case apierrors.IsNotFound(gerr):
				s.dropMarks(sc.ns(), ch.id)
				release(name)
			case gerr == nil && naming.NameKey(live.Spec.DisplayName) == naming.NameKey(spec.DisplayName) && live.Spec.ConfigName == sc.name():
				s.bindClaim(bg, claim, holderRef{name: live.Name, uid: live.UID})
			}
			return nil, s.apiError(err, groupRef(name))
		}
		// made by another create meanwhile: looked at again, as above
		s.dropMarks(sc.ns(), ch.id)
		ch = nil
		if races++; races > 3 {
			release(name)
			return nil, taken()
		}
	}
	if g == nil {
		release(claim.Spec.Holder)
		return nil, taken()
	}
	if !ch.empty() {
		// committed: the group is all there for readers; its labels follow
		s.finishAfterCommit(ctx, sc, ch)
	}
	seen := s.waitView(ctx, sc, g, ch) // (the group, then its members)
	s.bindClaim(wctx, claim, holderRef{name: g.Name, uid: g.UID})
	return s.groupAnswer(ctx, sc, g, true, !seen)
}

// ReplaceGroup implements PUT: displayName, externalId and (when given) the member set.
// withMembers says whether the answer lists the members.
func (s *Store) ReplaceGroup(ctx context.Context, sc Scope, id string, r scim.Resource, ifMatch string, withMembers bool) (scim.Resource, error) {
	spec, members, hasMembers, err := GroupSpecFromSCIM(r)
	if err != nil {
		return nil, err
	}
	d := &scim.MemberDelta{}
	if hasMembers {
		d.Clear, d.Add = true, members
	}
	return s.updateGroup(ctx, sc, id, ifMatch, withMembers, d, func(cur *scimv1.OrgGroup) (scimv1.OrgGroupSpec, error) {
		spec.ConfigName = cur.Spec.ConfigName
		return spec, nil
	})
}

// PatchGroup implements PATCH. withMembers says whether the answer lists members.
func (s *Store) PatchGroup(ctx context.Context, sc Scope, id string, ops []scim.PatchOp, ifMatch string, withMembers bool) (scim.Resource, error) {
	var delta *scim.MemberDelta
	return s.updateGroup(ctx, sc, id, ifMatch, withMembers, nil, func(cur *scimv1.OrgGroup) (scimv1.OrgGroupSpec, error) {
		res := GroupToSCIM(cur, nil, false, sc.BaseURL)
		d, err := scim.ApplyPatch(scim.GroupType, res, ops)
		if err != nil {
			return cur.Spec, err
		}
		delta = d
		spec, _, _, err := GroupSpecFromSCIM(res)
		spec.ConfigName = cur.Spec.ConfigName
		return spec, err
	}, func() *scim.MemberDelta { return delta })
}

func (s *Store) updateGroup(ctx context.Context, sc Scope, id, ifMatch string, withMembers bool, d *scim.MemberDelta,
	mutate func(*scimv1.OrgGroup) (scimv1.OrgGroupSpec, error), late ...func() *scim.MemberDelta) (scim.Resource, error) {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	var g *scimv1.OrgGroup
	var delta *scim.MemberDelta // d without what it would not change
	var ch *change              // its marks (package membership)
	// the displayNames claimed for a rename, and the old one's claim: see updateUser
	claimed := map[string]string{}
	var oldRV string
	var from *scimv1.OrgGroup
	unsure := false
	defer func() {
		if len(claimed) == 0 || from == nil {
			return
		}
		written := ""
		if g != nil {
			written = g.Spec.DisplayName
		}
		settleRenameClaims(s, context.WithoutCancel(wctx), sc, scimv1.NameClaimGroup, from, from.Spec.DisplayName, written, unsure,
			func(live *scimv1.OrgGroup) string { return live.Spec.DisplayName }, claimed, oldRV)
	}()
	defer func() {
		// the marks of a try that did not commit (a conflict, then an error on the next try)
		if ch != nil && !ch.empty() && g == nil && !unsure {
			s.dropMarks(sc.ns(), ch.id)
		}
	}()
	fresh := false
	finished := 0
	for try := 0; ; try++ {
		var cur *scimv1.OrgGroup
		var err error
		if fresh {
			cur = &scimv1.OrgGroup{}
			if err = s.APIReader.Get(wctx, types.NamespacedName{Namespace: sc.ns(), Name: id}, cur); err == nil &&
				(cur.Spec.ConfigName != sc.name() || !cur.DeletionTimestamp.IsZero()) {
				err = scim.NotFound("%s not found", groupRef(id))
			}
			err = s.apiError(err, groupRef(id))
		} else {
			cur, err = s.getGroup(wctx, sc, id)
		}
		if err != nil {
			return nil, err
		}
		from, oldRV = cur, ""
		if id := membership.Unfinished(cur); id != "" {
			// one change of a group is unfinished at a time: this one's writer stopped
			// before it was done, so it is finished first (it is all there for readers)
			if finished >= 3 {
				return nil, s.apiError(errors.New("the group's last membership change cannot be finished"), groupRef(cur.Name))
			}
			finished++
			if err := s.Finish(context.WithoutCancel(wctx), sc.ns(), cur.Name, id); err != nil {
				return nil, err
			}
			fresh = true
			continue
		}
		if ifMatch != "" && convert.VersionOf(cur) != ifMatch {
			if !fresh {
				fresh = true
				continue
			}
			return nil, stale(groupRef(id))
		}
		next, err := mutate(cur)
		if err != nil {
			return nil, err
		}
		if len(late) > 0 {
			d = late[0]()
		}
		delta = nil
		if d != nil && !d.Empty() && !fresh {
			// a request that changes members reads the group from the API server (see
			// effectiveMembers); one that changes only attributes may start from the cache
			fresh = true
			continue
		}
		if d != nil {
			if err := s.checkMembers(wctx, sc, d.Add); err != nil {
				return nil, err
			}
			if delta, err = s.effectiveMembers(wctx, sc, cur, d); err != nil {
				return nil, err
			}
		}
		if naming.NameKey(next.DisplayName) != naming.NameKey(cur.Spec.DisplayName) {
			if taken, err := s.displayNameTaken(wctx, sc, next.DisplayName, cur.Name); err != nil {
				return nil, err
			} else if taken {
				return nil, conflictDisplayName(next.DisplayName)
			}
			// the API server decides who gets the new name: claim it before the write
			h := holderRef{name: cur.Name, uid: cur.UID}
			c, err := s.claim(wctx, sc, scimv1.NameClaimGroup, next.DisplayName, h,
				func() error { return conflictDisplayName(next.DisplayName) },
				func() error { return stillDeleting("a group with displayName %q", next.DisplayName) })
			if err != nil {
				return nil, err
			}
			claimed[next.DisplayName] = c.ResourceVersion
			oldRV = s.claimVersion(wctx, sc, scimv1.NameClaimGroup, cur.Spec.DisplayName, h)
		}
		if ch != nil {
			s.dropMarks(sc.ns(), ch.id) // of a try that did not commit
			ch = nil
		}
		if delta != nil && !delta.Empty() {
			if ch, err = s.marks(wctx, sc, cur.Name, delta, false); err != nil {
				return nil, err
			}
		}
		membersChange := ch != nil && !ch.empty()
		if equalJSON(cur.Spec, next) && ifMatch == "" && !membersChange {
			g = cur
			break
		}
		updated := cur.DeepCopy()
		updated.Spec = next
		if membersChange || !equalJSON(cur.Spec, next) {
			convert.Touch(updated, time.Now())
		}
		if membersChange {
			// Members live on the OrgMembers; bumping this annotation in the same
			// optimistic-lock patch gives the group a new version (and ETag) for a
			// members-only change, so two changes made against one If-Match cannot both win.
			bumpMembersRevision(updated)
			// and this patch commits the change (package membership), naming the one
			// before it (finished) for readers whose member cache lags
			updated.Annotations[scimv1.AnnotationMembersChange] = ch.id
			delete(updated.Annotations, scimv1.AnnotationMembersChangePrevious)
			if prev, _ := membership.LastChange(cur); prev != "" {
				updated.Annotations[scimv1.AnnotationMembersChangePrevious] = prev
			}
		}
		// The commit runs on a context the client hanging up does not cancel: once sent,
		// its outcome is learnt, and a committed change is finished below.
		pctx, pcancel := wctx, context.CancelFunc(func() {})
		if membersChange {
			pctx, pcancel = s.writeCtx(context.WithoutCancel(ctx))
		}
		err = s.Client.Patch(pctx, updated, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner))
		pcancel()
		if apierrors.IsConflict(err) {
			if try < 5 { // read again, check If-Match again (updateUser)
				fresh = true
				continue
			}
		}
		if err != nil {
			unsure = !definite(err) // (a commit that may have happened keeps its marks)
			return nil, s.apiError(err, groupRef(id))
		}
		g = updated
		break
	}
	if ch != nil && !ch.empty() {
		// committed: all there for readers; the labels follow, whether or not the client
		// is still there
		s.finishAfterCommit(ctx, sc, ch)
	}
	seen := s.waitView(ctx, sc, g, ch) // (the group, then its members)
	return s.groupAnswer(ctx, sc, g, withMembers, !seen)
}

// effectiveMembers drops from a membership change what would change nothing: ids added
// that are members already, ids removed that are not members (of this group, or of this
// ScimConfig at all), and a replace with the set the group already has. A request that
// changes no membership then writes nothing, not even the group's members revision:
// removing another tenant's user from a group answers 200 and leaves every object as it
// was. It reads the API server (the group too: updateGroup reads it live for a membership
// change): a no-op decided on a lagging cache writes nothing, so no optimistic lock would
// catch it, and a remove answered 200 would be lost.
func (s *Store) effectiveMembers(ctx context.Context, sc Scope, g *scimv1.OrgGroup, d *scim.MemberDelta) (*scim.MemberDelta, error) {
	if d == nil || d.Empty() {
		return d, nil
	}
	if d.Clear {
		cur, err := s.groupMembersLive(ctx, sc, g)
		if err != nil {
			return nil, err
		}
		want := map[string]bool{}
		for _, id := range d.Add {
			want[id] = true
		}
		if len(cur) != len(want) {
			return d, nil
		}
		for _, m := range cur {
			if !want[m.Name] {
				return d, nil
			}
		}
		return &scim.MemberDelta{}, nil
	}
	// (read in parallel, as the marks are written)
	var mu sync.Mutex
	out := &scim.MemberDelta{}
	add, remove := map[string]bool{}, map[string]bool{}
	gone := func(err error) bool {
		var se *scim.Error
		return errors.As(err, &se) && se.Status == 404
	}
	if err := each(d.Add, func(id string) error {
		m, err := s.liveMember(ctx, sc, id)
		if gone(err) {
			// checkMembers found it (in the cache): deleted since, or the cache lags
			return scim.BadRequest(scim.ErrInvalidValue, "unknown member id(s): %s", id)
		}
		if err != nil {
			return err
		}
		mu.Lock()
		add[id] = !membership.In(m, g)
		mu.Unlock()
		return nil
	}); err != nil {
		return nil, err
	}
	if err := each(d.Remove, func(id string) error {
		m, err := s.liveMember(ctx, sc, id)
		if gone(err) {
			return nil // not a member of this group, or of this ScimConfig at all
		}
		if err != nil {
			return err
		}
		mu.Lock()
		remove[id] = membership.In(m, g)
		mu.Unlock()
		return nil
	}); err != nil {
		return nil, err
	}
	for _, id := range d.Add { // in the request's order
		if add[id] {
			out.Add = append(out.Add, id)
		}
	}
	for _, id := range d.Remove {
		if remove[id] {
			out.Remove = append(out.Remove, id)
		}
	}
	return out, nil
}

// liveMember is getMember read from the API server.
func (s *Store) liveMember(ctx context.Context, sc Scope, id string) (*scimv1.OrgMember, error) {
	if !ValidID(id) {
		return nil, scim.NotFound("%s not found", userRef(id))
	}
	var m scimv1.OrgMember
	if err := s.APIReader.Get(ctx, types.NamespacedName{Namespace: sc.ns(), Name: id}, &m); err != nil {
		return nil, s.apiError(err, userRef(id))
	}
	if m.Spec.ConfigName != sc.name() || !m.DeletionTimestamp.IsZero() {
		return nil, scim.NotFound("%s not found", userRef(id))
	}
	return &m, nil
}

// VersionOf is the version token of an OrgMember's or OrgGroup's SCIM representation
// (its ETag without W/ and quotes).
var VersionOf = convert.VersionOf

// AnnotationMembersRevision on an OrgGroup counts its membership changes.
const AnnotationMembersRevision = convert.AnnotationMembersRevision

func bumpMembersRevision(g *scimv1.OrgGroup) {
	n, _ := strconv.ParseInt(g.Annotations[AnnotationMembersRevision], 10, 64)
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[AnnotationMembersRevision] = strconv.FormatInt(n+1, 10)
}

// DeleteGroup deletes the OrgGroup, then removes its label (and the marks of its last
// change) from its members. Everything from the first write on runs on one context that
// the client hanging up does not cancel (with its own timeout): a delete is carried out
// whole once begun. The group goes first, so readers never see it live and emptied (a
// group being deleted is hidden, and a group created again under the name marks out
// labels left on members); then the labels go.
func (s *Store) DeleteGroup(ctx context.Context, sc Scope, id, ifMatch string) error {
	g, err := s.getGroup(ctx, sc, id)
	if err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	for try := 0; ; try++ {
		pre := metav1.Preconditions{UID: &g.UID}
		if ifMatch != "" {
			// checked against the API server (not the cache, which may lag), and the
			// delete made at the version checked: a change in between answers 412 (a
			// write of the controllers', which leaves the version, is looked at again)
			var fresh scimv1.OrgGroup
			if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(g), &fresh); err != nil {
				return s.apiError(err, groupRef(id))
			}
			if fresh.UID != g.UID || convert.VersionOf(&fresh) != ifMatch {
				return stale(groupRef(id))
			}
			g = &fresh
			pre.ResourceVersion = &fresh.ResourceVersion
		}
		wctx, cancel := s.writeCtx(bg)
		err = s.Client.Delete(wctx, g, client.Preconditions(pre))
		cancel()
		if apierrors.IsConflict(err) && ifMatch != "" && try < 5 {
			continue
		}
		break
	}
	if apierrors.IsConflict(err) {
		if ifMatch == "" {
			// the UID precondition: the group was deleted and created again meanwhile
			return scim.NotFound("%s not found", groupRef(id))
		}
		return stale(groupRef(id))
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return s.apiError(err, groupRef(id))
	}
	if err := s.stripGroup(bg, sc, g); err != nil {
		return err
	}
	s.waitCache(ctx, g, "")
	return nil
}

// stripGroup removes a deleted group's label, and the marks of its last change, from the
// members that carry them (as the API server has them), each write with its own timeout.
//
// A group created again under the name (the IdP, or another replica, while this strip
// runs) owns the name's labels from its commit on: it marks every member it wants and
// marks out the others, so this strip stops once it sees that group. Each label is
// removed with the member's version read before that look (optimistic lock), so a member
// the new group touched since is read again and looked at again rather than stripped.
func (s *Store) stripGroup(ctx context.Context, sc Scope, g *scimv1.OrgGroup) error {
	keys := []string{scimv1.LabelGroupPrefix + g.Name}
	for _, id := range membership.Changes(g) {
		keys = append(keys, membership.MarkKey(id))
	}
	for _, key := range keys {
		wctx, cancel := s.writeCtx(ctx)
		var list scimv1.OrgMemberList
		err := s.APIReader.List(wctx, &list, client.InNamespace(sc.ns()), client.HasLabels{key})
		cancel()
		if err != nil {
			return s.apiError(err, "members")
		}
		if again, err := s.createdAgain(ctx, sc, g); err != nil || again {
			return err
		}
		byName := make(map[string]*scimv1.OrgMember, len(list.Items))
		names := make([]string, 0, len(list.Items))
		for i := range list.Items {
			byName[list.Items[i].Name] = &list.Items[i]
			names = append(names, list.Items[i].Name)
		}
		if err := each(names, func(name string) error { return s.stripMember(ctx, sc, g, byName[name], key) }); err != nil {
			return err
		}
	}
	return nil
}

// createdAgain tells whether a group other than g (a new one) holds g's object name now.
func (s *Store) createdAgain(ctx context.Context, sc Scope, g *scimv1.OrgGroup) (bool, error) {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	var cur scimv1.OrgGroup
	err := s.APIReader.Get(wctx, client.ObjectKeyFromObject(g), &cur)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, s.apiError(err, groupRef(g.Name))
	}
	return cur.UID != g.UID, nil
}

// stripMember removes label key from m, read before the last createdAgain look.
func (s *Store) stripMember(ctx context.Context, sc Scope, g *scimv1.OrgGroup, m *scimv1.OrgMember, key string) error {
	for try := 0; ; try++ {
		if _, has := m.Labels[key]; !has {
			return nil
		}
		upd := m.DeepCopy()
		delete(upd.Labels, key)
		if id, ok := strings.CutPrefix(key, scimv1.LabelChangePrefix); ok && !membership.MarksFor(m.Labels, g.Name, id) {
			delete(upd.Labels, membership.ChangingKey(g.Name))
		}
		wctx, cancel := s.writeCtx(ctx)
		err := s.Client.Patch(wctx, upd, client.MergeFromWithOptions(m, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner))
		cancel()
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case !apierrors.IsConflict(err) || try >= 10:
			return s.apiError(err, userRef(m.Name))
		}
		// changed since: read again, then look again (in that order)
		wctx, cancel = s.writeCtx(ctx)
		var live scimv1.OrgMember
		err = s.APIReader.Get(wctx, client.ObjectKeyFromObject(m), &live)
		cancel()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return s.apiError(err, userRef(m.Name))
		}
		if again, err := s.createdAgain(ctx, sc, g); err != nil || again {
			return err
		}
		m = &live
	}
}

// apiError maps an API server error like APIError and logs the ones that are not the
// client's doing (5xx), with the underlying error, for the operator.
func (s *Store) apiError(err error, what string) error {
	mapped := APIError(err, what)
	var se *scim.Error
	if errors.As(mapped, &se) && se.Status >= 500 {
		s.Log.Error(err, "Kubernetes API call failed", "resource", what, "answer", se.Status)
	}
	return mapped
}
