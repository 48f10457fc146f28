package scimstore

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// Resources is the store of one SCIM resource type as the HTTP layer sees it: one
// implementation per type (Users, Groups), so that the handlers, and every operation of
// a Bulk request, run one code path whatever the type. Errors are SCIM errors.
type Resources interface {
	// Type is the resource type served.
	Type() *scim.ResourceType
	// Create implements POST of a canonicalized resource.
	Create(ctx context.Context, sc Scope, r scim.Resource) (scim.Resource, error)
	// Get returns one resource; v says what the answer will show.
	Get(ctx context.Context, sc Scope, id string, v View) (scim.Resource, error)
	// Replace implements PUT of a canonicalized resource under the If-Match list ifMatch.
	Replace(ctx context.Context, sc Scope, id string, r scim.Resource, ifMatch scim.ETags, v View) (scim.Resource, error)
	// Patch implements PATCH under the If-Match list ifMatch.
	Patch(ctx context.Context, sc Scope, id string, ops []scim.PatchOp, ifMatch scim.ETags, v View) (scim.Resource, error)
	// Delete implements DELETE under the If-Match list ifMatch.
	Delete(ctx context.Context, sc Scope, id string, ifMatch scim.ETags) error
	// List answers a list or search request: the page it asks for, unprojected.
	List(ctx context.Context, sc Scope, q ListRequest) (ListPage, error)
}

// View is what an answer will show (the request's attributes and excludedAttributes):
// the store skips the work, such as a group's members, that the answer leaves out.
type View struct {
	Attributes, ExcludedAttributes []string
}

// ViewOf is the view a query asks for.
func ViewOf(q scim.Query) View {
	return View{Attributes: q.Attributes, ExcludedAttributes: q.ExcludedAttributes}
}

// members tells whether the answer shows a group's members.
func (v View) members() bool {
	return scim.Includes(v.Attributes, "members") && !scim.Excludes(v.ExcludedAttributes, "members")
}

// writtenMembers tells whether the answer to a group's PUT or PATCH shows its members:
// only when attributes names them. The client wrote the change and knows it; listing
// every member of a 50,000-member group in the answer to each of Entra's batched adds
// cost O(N) per request (issue 9, defect 5). GET still shows them by default.
func (v View) writtenMembers() bool {
	return len(v.Attributes) > 0 && v.members()
}

// ListRequest is a list or search request.
type ListRequest struct {
	scim.Query
	// Unpaged asks for every match, sorted, whatever startIndex and count say: the root
	// .search sorts each type and pages across them itself.
	Unpaged bool
	// LeaveMembers (with Unpaged) leaves group members out unless the filter or the order
	// needs them: the caller cuts its page and calls PageMembers on it, instead of every
	// match's members being looked up (the root .search with count=1 listed them all).
	LeaveMembers bool
}

// ListPage is one page of a list answer.
type ListPage struct {
	Resources []scim.Resource
	// Total is the number of matches; Start the 1-based index of the first resource
	// (0 on a cursor page).
	Total, Start int
	// NextCursor and PreviousCursor are a cursor page's neighbours (RFC 9865; "" for none).
	NextCursor, PreviousCursor string
}

// Users is the store of the User resource type.
func (s *Store) Users() Resources { return users{s} }

// Groups is the store of the Group resource type.
func (s *Store) Groups() Resources { return groups{s} }

type users struct{ s *Store }

func (u users) Type() *scim.ResourceType { return scim.UserType }

func (u users) Create(ctx context.Context, sc Scope, r scim.Resource) (scim.Resource, error) {
	return u.s.CreateUser(ctx, sc, r)
}

func (u users) Get(ctx context.Context, sc Scope, id string, _ View) (scim.Resource, error) {
	return u.s.GetUser(ctx, sc, id)
}

func (u users) Replace(ctx context.Context, sc Scope, id string, r scim.Resource, ifMatch scim.ETags, _ View) (scim.Resource, error) {
	return u.s.ReplaceUser(ctx, sc, id, r, u.s.ifMatchVersion(ctx, sc, &scimv1.OrgMember{}, id, ifMatch))
}

func (u users) Patch(ctx context.Context, sc Scope, id string, ops []scim.PatchOp, ifMatch scim.ETags, _ View) (scim.Resource, error) {
	return u.s.PatchUser(ctx, sc, id, ops, u.s.ifMatchVersion(ctx, sc, &scimv1.OrgMember{}, id, ifMatch))
}

func (u users) Delete(ctx context.Context, sc Scope, id string, ifMatch scim.ETags) error {
	return u.s.DeleteUser(ctx, sc, id, u.s.ifMatchVersion(ctx, sc, &scimv1.OrgMember{}, id, ifMatch))
}

func (u users) List(ctx context.Context, sc Scope, q ListRequest) (ListPage, error) {
	f, err := parseFilter(scim.UserType, q.Filter)
	if err != nil {
		return ListPage{}, err
	}
	if q.Cursor != nil && !q.Unpaged {
		return cursorList(sc, scim.UserType, q.Query, func(c Cursor, count int) (CursorPage, error) {
			if f == nil { // converts only the page's members, as ListUsersPage
				return u.s.ListUsersCursor(ctx, sc, c, count)
			}
			items, err := u.s.ListUsers(ctx, sc, f)
			if err != nil {
				return CursorPage{}, err
			}
			return ResourcePage(items, byID(items), c, count), nil
		})
	}
	if f == nil && q.SortBy == "" && !q.Unpaged {
		// The IdPs' paging case: the page is cut before converting; the answer is the
		// one of the general path. sortOrder is validated as the general path does.
		if err := scim.SortResources(scim.UserType, nil, "", q.SortOrder); err != nil {
			return ListPage{}, err
		}
		start, count := q.Page()
		page, total, err := u.s.ListUsersPage(ctx, sc, start, count)
		if err != nil {
			return ListPage{}, err
		}
		return ListPage{Resources: page, Total: total, Start: start}, nil
	}
	items, err := u.s.ListUsers(ctx, sc, f)
	if err != nil {
		return ListPage{}, err
	}
	if err := scim.SortResources(scim.UserType, items, q.SortBy, q.SortOrder); err != nil {
		return ListPage{}, err
	}
	return cut(items, q), nil
}

type groups struct{ s *Store }

func (g groups) Type() *scim.ResourceType { return scim.GroupType }

func (g groups) Create(ctx context.Context, sc Scope, r scim.Resource) (scim.Resource, error) {
	return g.s.CreateGroup(ctx, sc, r)
}

func (g groups) Get(ctx context.Context, sc Scope, id string, v View) (scim.Resource, error) {
	return g.s.GetGroup(ctx, sc, id, v.members())
}

func (g groups) Replace(ctx context.Context, sc Scope, id string, r scim.Resource, ifMatch scim.ETags, v View) (scim.Resource, error) {
	return g.s.ReplaceGroup(ctx, sc, id, r, g.s.ifMatchVersion(ctx, sc, &scimv1.OrgGroup{}, id, ifMatch), v.writtenMembers())
}

func (g groups) Patch(ctx context.Context, sc Scope, id string, ops []scim.PatchOp, ifMatch scim.ETags, v View) (scim.Resource, error) {
	return g.s.PatchGroup(ctx, sc, id, ops, g.s.ifMatchVersion(ctx, sc, &scimv1.OrgGroup{}, id, ifMatch), v.writtenMembers())
}

func (g groups) Delete(ctx context.Context, sc Scope, id string, ifMatch scim.ETags) error {
	return g.s.DeleteGroup(ctx, sc, id, g.s.ifMatchVersion(ctx, sc, &scimv1.OrgGroup{}, id, ifMatch))
}

func (g groups) List(ctx context.Context, sc Scope, q ListRequest) (ListPage, error) {
	f, err := parseFilter(scim.GroupType, q.Filter)
	if err != nil {
		return ListPage{}, err
	}
	// Members are looked up before the page is cut only when the filter or the order needs
	// them (or every match is asked for); otherwise only the page's groups get theirs
	// (GET /Groups?count=100 on groups of 50,000 members once built every member of
	// every group).
	show := ViewOf(q.Query).members()
	load := groupsLoad(q)
	var page ListPage
	if q.Cursor != nil && !q.Unpaged {
		page, err = cursorList(sc, scim.GroupType, q.Query, func(c Cursor, count int) (CursorPage, error) {
			items, err := g.s.ListGroups(ctx, sc, f, load)
			if err != nil {
				return CursorPage{}, err
			}
			return ResourcePage(items, byID(items), c, count), nil
		})
		if err != nil {
			return ListPage{}, err
		}
	} else {
		items, err := g.s.ListGroups(ctx, sc, f, load)
		if err != nil {
			return ListPage{}, err
		}
		if err := scim.SortResources(scim.GroupType, items, q.SortBy, q.SortOrder); err != nil {
			return ListPage{}, err
		}
		page = cut(items, q)
	}
	if !load && show && !q.LeaveMembers {
		if err := g.fill(ctx, sc, page.Resources); err != nil {
			return ListPage{}, err
		}
	}
	return page, nil
}

// groupsLoad tells whether a group list looks up every match's members before cutting
// the page: when the filter or the order needs them, or every match is asked for with
// its members (and the caller does not cut the page itself, LeaveMembers).
func groupsLoad(q ListRequest) bool {
	return strings.Contains(strings.ToLower(q.Filter), "members") ||
		strings.Contains(strings.ToLower(q.SortBy), "members") ||
		(q.Unpaged && !q.LeaveMembers && ViewOf(q.Query).members())
}

// fill puts their members into the listed groups of a page.
func (g groups) fill(ctx context.Context, sc Scope, page []scim.Resource) error {
	for i, res := range page {
		withM, err := g.s.GetGroup(ctx, sc, res["id"].(string), true)
		var se *scim.Error
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			continue // deleted since the listing: listed as it was
		}
		if err != nil {
			return err
		}
		page[i] = withM
	}
	return nil
}

// PageMembers puts their members into the groups of a page that the caller cut out of an
// unpaged list asked with LeaveMembers (the root .search pages across types itself), when
// the query shows members and the list did not look them up already.
func PageMembers(ctx context.Context, sc Scope, rs Resources, q ListRequest, page []scim.Resource) error {
	g, ok := rs.(groups)
	if !ok || groupsLoad(q) || !ViewOf(q.Query).members() {
		return nil
	}
	return g.fill(ctx, sc, page)
}

func parseFilter(rt *scim.ResourceType, filter string) (*scim.Filter, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	return scim.ParseFilter(rt, filter)
}

// cut is the page q asks for of sorted items (all of them when q is unpaged).
func cut(items []scim.Resource, q ListRequest) ListPage {
	if q.Unpaged {
		return ListPage{Resources: items, Total: len(items), Start: 1}
	}
	start, count := q.Page()
	page := []scim.Resource{}
	if start <= len(items) {
		page = items[start-1 : min(start-1+count, len(items))]
	}
	return ListPage{Resources: page, Total: len(items), Start: start}
}

// ifMatchVersion turns an If-Match list into the version token the store checks before
// its conditional write: "" when there is none or it is "*" (any current version: the
// store still answers 404 for a missing resource), the tag when it names one. Of several
// tags it picks the one the object on the API server has, read uncached into obj: a
// replica whose cache lags must not refuse a current tag, and since the store checks the
// token again against what it writes, a change in between answers 412.
func (s *Store) ifMatchVersion(ctx context.Context, sc Scope, obj client.Object, id string, l scim.ETags) string {
	if l.Any || len(l.Tags) == 0 {
		return ""
	}
	tag := l.Tags[0]
	if len(l.Tags) > 1 && ValidID(id) {
		if err := s.APIReader.Get(ctx, types.NamespacedName{Namespace: sc.Config.Namespace, Name: id}, obj); err == nil {
			v := VersionOf(obj)
			if m, ok := obj.(*scimv1.OrgMember); ok {
				v = s.userVersionLive(ctx, sc, m)
			}
			for _, t := range l.Tags {
				if t == v {
					tag = t
					break
				}
			}
		}
	}
	if tag == "" {
		// W/"" names no version, yet "" asks the store for none: send what no
		// version token is, so that the precondition fails as it must
		return `""`
	}
	return tag
}

// ErrNoSuchConfig is Config's answer for a ScimConfig that does not exist, or a name
// that cannot be one.
var ErrNoSuchConfig = errors.New("no such ScimConfig")

// Config reads the ScimConfig namespace/name from the cache: ErrNoSuchConfig when there is
// none, a SCIM error (503 with Retry-After) when the API server cannot tell.
func (s *Store) Config(ctx context.Context, namespace, name string) (*scimv1.ScimConfig, error) {
	var cfg scimv1.ScimConfig
	err := s.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &cfg)
	switch {
	case err == nil:
		return &cfg, nil
	case apierrors.IsNotFound(err) || !ValidID(name):
		return nil, ErrNoSuchConfig
	}
	return nil, APIError(err, "ScimConfig")
}

// Unavailable tells a failure to reach the API server (503 with Retry-After) from a
// definite answer, such as a token Secret or key that is not there (which answers 401
// like a wrong token). A 401 or 403 from the API server refused the manager's own
// credentials or rights, not the IdP's token: a kube-apiserver that is starting answers
// so until its authenticators and RBAC are ready (a valid token must not be answered
// 401, then throttled).
func Unavailable(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code >= 500 || code == http.StatusTooManyRequests ||
			code == http.StatusUnauthorized || code == http.StatusForbidden
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}
