package hubemu

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// fields collapses each line's runs of blanks to one space, as a reader of the table does.
func fields(table string) []string {
	var out []string
	for _, l := range strings.Split(table, "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestDevEndpoints(t *testing.T) {
	const tok, ro = "dckr_oat_dev", "dckr_oat_ro"
	emu := New(Options{Org: "acme", DevEndpoints: true,
		Tokens: map[string]TokenSpec{tok: {}, ro: {ReadOnly: true}}}).Start()
	defer emu.Close()
	c := &rawClient{t: t, base: emu.URL(), token: tok}
	emu.AddTeam("developers")
	emu.AddAccount("bob", "bob@example.com")
	jwt := func() string {
		st, _, b := (&rawClient{t: t, base: emu.URL()}).do("POST", "/v2/auth/token", map[string]string{"identifier": "acme", "secret": tok})
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if st != 200 || json.Unmarshal(b, &out) != nil || out.AccessToken == "" {
			t.Fatalf("token exchange: %d %s", st, b)
		}
		return out.AccessToken
	}()
	api := &rawClient{t: t, base: emu.URL(), token: jwt}
	st, _, b := api.do("POST", "/v2/invites/bulk", map[string]any{"org": "acme", "role": "member", "team": "developers",
		"invitees": []string{"dana@example.com"}})
	if st != 202 {
		t.Fatalf("invite: %d %s", st, b)
	}

	t.Run("the organization as a table, one row per person and per team", func(t *testing.T) {
		st, h, b := c.do("GET", "/_emulator/org", nil)
		if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
			t.Fatalf("%d %s: %s", st, h.Get("Content-Type"), b)
		}
		lines := fields(string(b))
		id := emu.Invites()[0].ID
		for _, want := range []string{
			"organization acme: 1 member(s), 1 pending invitation(s), 2 team(s)",
			"KIND WHO ROLE TEAMS INVITE ID",
			"member owner (owner@acme.example) owner owners -",
			"invited dana@example.com member developers " + id,
			"TEAM MEMBERS",
			"developers -",
			"owners owner",
		} {
			if !hasLine(lines, want) {
				t.Errorf("no line %q in\n%s", want, b)
			}
		}
	})

	t.Run("accepting an invitation makes a member of the invited team", func(t *testing.T) {
		for _, bad := range []map[string]string{{"invitee": "dana@example.com"}, {"username": "dana"}} {
			if st, _, b := c.do("POST", "/_emulator/invites/accept", bad); st != 400 {
				t.Errorf("%v: %d %s, want 400", bad, st, b)
			}
		}
		if st, _, b := c.do("POST", "/_emulator/invites/accept", map[string]string{"invitee": "eve@example.com", "username": "eve"}); st != 404 {
			t.Errorf("no invitation for eve: %d %s, want 404", st, b)
		}
		st, _, b := c.do("POST", "/_emulator/invites/accept", map[string]string{"invitee": "dana@example.com", "username": "dana"})
		var m MemberView
		if st != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("accept: %d %s", st, b)
		}
		if m.Username != "dana" || m.Email != "dana@example.com" || m.Role != "member" || strings.Join(m.Teams, ",") != "developers" {
			t.Errorf("accepted as %+v", m)
		}
		if len(emu.Invites()) != 0 || !emu.IsMember("dana") {
			t.Errorf("invites %v, dana a member: %v", emu.Invites(), emu.IsMember("dana"))
		}
		_, _, b = c.do("GET", "/_emulator/org", nil)
		lines := fields(string(b))
		for _, want := range []string{"member dana (dana@example.com) member developers -", "developers dana"} {
			if !hasLine(lines, want) {
				t.Errorf("no line %q in\n%s", want, b)
			}
		}
		if strings.Contains(string(b), "invited") {
			t.Errorf("an invitation is still shown:\n%s", b)
		}
	})

	t.Run("as JSON", func(t *testing.T) {
		st, _, b := c.do("GET", "/_emulator/org?format=json", nil)
		var v OrgView
		if st != 200 || json.Unmarshal(b, &v) != nil {
			t.Fatalf("%d %s", st, b)
		}
		if v.Org != "acme" || len(v.Members) != 2 || v.Members[0].Username != "dana" || v.Invitations == nil || len(v.Teams) != 2 {
			t.Errorf("%s", b)
		}
		if !strings.Contains(string(b), `"username":"dana"`) || !strings.Contains(string(b), `"invitations":[]`) {
			t.Errorf("keys are not the documented ones: %s", b)
		}
	})

	t.Run("only with an organization access token, and a read-only one only reads", func(t *testing.T) {
		for _, bad := range []string{"", "dckr_oat_wrong", jwt} {
			if st, _, b := (&rawClient{t: t, base: emu.URL(), token: bad}).do("GET", "/_emulator/org", nil); st != 401 {
				t.Errorf("token %q: %d %s, want 401", bad, st, b)
			}
		}
		roc := &rawClient{t: t, base: emu.URL(), token: ro}
		if st, _, b := roc.do("GET", "/_emulator/org", nil); st != 200 {
			t.Errorf("read-only token reads: %d %s", st, b)
		}
		if st, _, b := roc.do("POST", "/_emulator/invites/accept", map[string]string{"invitee": "x@example.com", "username": "x"}); st != 403 {
			t.Errorf("read-only token accepts: %d %s, want 403", st, b)
		}
		if st, _, _ := c.do("DELETE", "/_emulator/org", nil); st != http.StatusMethodNotAllowed {
			t.Errorf("DELETE: %d", st)
		}
		if st, _, _ := c.do("GET", "/_emulator/nothing", nil); st != 404 {
			t.Errorf("unknown dev path: %d", st)
		}
	})

	t.Run("not in the request log, and absent without DevEndpoints", func(t *testing.T) {
		if n := emu.Count("", "/_emulator/*"); n != 0 {
			t.Errorf("%d dev requests logged", n)
		}
		plain := New(Options{Org: "acme", Tokens: map[string]TokenSpec{tok: {}}}).Start()
		defer plain.Close()
		st, h, _ := (&rawClient{t: t, base: plain.URL(), token: tok}).do("GET", "/_emulator/org", nil)
		if st != 404 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("without DevEndpoints: %d %s, want the API's HTML 404", st, h.Get("Content-Type"))
		}
	})
}
