package hubemu

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
)

// DevPrefix starts the paths of the emulator's own endpoints, which Docker Hub does not
// have: they are served only with Options.DevEndpoints, for a person trying the operator
// against the emulator (`make run DOCKERHUB=1`, docs/try-dockerhub.md).
//
//	GET  /_emulator/org             the organization: members, pending invitations and teams,
//	                                as a table (?format=json: as JSON)
//	POST /_emulator/invites/accept  {"invitee":"dana@example.com","username":"dana"}: the
//	                                invitee accepts, as the Docker account username (AcceptInvite)
//
// Both want one of the organization access tokens itself as the bearer token
// (`Authorization: Bearer dckr_oat_...`, no exchange for a JWT); a read-only token may only
// read. They bypass the API's request log, rate limit, faults and Options.Middleware.
const DevPrefix = "/_emulator/"

// OrgView is the organization as GET /_emulator/org?format=json shows it.
type OrgView struct {
	Org         string       `json:"org"`
	Members     []MemberView `json:"members"`
	Invitations []InviteView `json:"invitations"`
	Teams       []TeamView   `json:"teams"`
}

// View returns the organization: members, pending invitations and teams.
func (e *Emulator) View() OrgView {
	v := OrgView{Org: e.opts.Org, Members: e.Members(), Invitations: e.Invites(), Teams: e.Teams()}
	if v.Invitations == nil {
		v.Invitations = []InviteView{}
	}
	if v.Teams == nil {
		v.Teams = []TeamView{}
	}
	return v
}

// WriteTable writes v as two tables: the people (members, then pending invitations) and
// the teams with their members. Every row starts with what it is, so that a row reads
// alone: "member dana (dana@example.com) member developers", "invited dana@example.com
// member -", "developers dana".
func (v OrgView) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(tw, "organization %s: %d member(s), %d pending invitation(s), %d team(s)\n\n",
		v.Org, len(v.Members), len(v.Invitations), len(v.Teams))
	fmt.Fprintln(tw, "KIND\tWHO\tROLE\tTEAMS\tINVITE ID")
	for _, m := range v.Members {
		who := m.Username
		if m.Email != "" {
			who += " (" + m.Email + ")"
		}
		fmt.Fprintf(tw, "member\t%s\t%s\t%s\t-\n", who, m.Role, dash(strings.Join(m.Teams, ",")))
	}
	for _, inv := range v.Invitations {
		fmt.Fprintf(tw, "invited\t%s\t%s\t%s\t%s\n", inv.Invitee, inv.Role, dash(inv.Team), inv.ID)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "TEAM\tMEMBERS")
	for _, t := range v.Teams {
		fmt.Fprintf(tw, "%s\t%s\n", t.Name, dash(strings.Join(t.Members, ",")))
	}
	return tw.Flush()
}

// serveDev answers the DevPrefix endpoints.
func (e *Emulator) serveDev(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	e.mu.Lock()
	spec, known := e.tokens[raw]
	e.mu.Unlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hubemu"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"detail": "send one of the organization's access tokens: Authorization: Bearer dckr_oat_..."})
		return
	}
	switch path := strings.TrimSuffix(r.URL.Path, "/"); {
	case path == DevPrefix+"org" && r.Method == http.MethodGet:
		v := e.View()
		if r.URL.Query().Get("format") == "json" {
			writeJSON(w, http.StatusOK, v)
			return
		}
		var b bytes.Buffer
		_ = v.WriteTable(&b)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	case path == DevPrefix+"invites/accept" && r.Method == http.MethodPost:
		if spec.ReadOnly {
			writeJSON(w, http.StatusForbidden, map[string]any{"detail": "You do not have permission to perform this action."})
			return
		}
		var req struct {
			Invitee  string `json:"invitee"`
			Username string `json:"username"`
		}
		if !decodeBody(w, r, &req) {
			return
		}
		if req.Invitee == "" || req.Username == "" {
			fieldError(w, http.StatusBadRequest, "invitee", `both "invitee" (the email or Docker ID invited) and "username" (the Docker ID that accepts) are required`)
			return
		}
		if err := e.AcceptInvite(req.Invitee, req.Username); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"detail": err.Error()})
			return
		}
		m, _ := e.Member(req.Username)
		writeJSON(w, http.StatusOK, m)
	case path == DevPrefix+"org" || path == DevPrefix+"invites/accept":
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": fmt.Sprintf("Method %q not allowed.", r.Method)})
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "the emulator serves GET " + DevPrefix + "org and POST " +
			DevPrefix + "invites/accept"})
	}
}
