package hubemu

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

type rawClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *rawClient) do(method, path string, body any) (int, http.Header, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestContractLoads(t *testing.T) {
	c := RequireContract(t)
	if c.doc.Paths.Value("/v2/invites/bulk") == nil {
		t.Fatal("no bulk invite path")
	}
}

// TestEmulatorFollowsContract drives every call the project uses through the
// validating middleware and checks the emulator's behaviour on the way.
func TestEmulatorFollowsContract(t *testing.T) {
	v := RequireContract(t).Validator(t)
	emu := New(Options{Org: "acme", Middleware: v.Middleware}).Start()
	defer emu.Close()
	c := &rawClient{t: t, base: emu.URL()}

	st, _, b := c.do("POST", "/v2/auth/token", map[string]string{"identifier": "acme", "secret": "wrong"})
	if st != 401 || !strings.Contains(string(b), "errinfo") {
		t.Fatalf("bad secret: %d %s", st, b)
	}
	st, _, b = c.do("POST", "/v2/auth/token", map[string]string{"identifier": "acme", "secret": DefaultToken})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if st != 200 || json.Unmarshal(b, &tok) != nil || strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("token: %d %s", st, b)
	}
	st, _, b = c.do("POST", "/v2/users/login", map[string]string{"username": "acme", "password": DefaultToken})
	if st != 200 || !strings.Contains(string(b), `"token"`) {
		t.Fatalf("login: %d %s", st, b)
	}
	c.token = tok.AccessToken

	for i := 0; i < 30; i++ {
		emu.AddMember("user"+string(rune('a'+i%26))+string(rune('a'+i/26)), "u"+string(rune('a'+i%26))+string(rune('a'+i/26))+"@acme.example", "member")
	}
	emu.AddMember("ed", "ed@acme.example", "editor")
	st, _, b = c.do("GET", "/v2/orgs/acme/members/", nil)
	var page struct {
		Count    int
		Next     *string
		Previous *string
		Results  []map[string]any
	}
	if st != 200 || json.Unmarshal(b, &page) != nil {
		t.Fatalf("members: %d %s", st, b)
	}
	if page.Count != 32 || len(page.Results) != 25 || page.Next == nil || !strings.HasPrefix(*page.Next, emu.URL()+"/v2/orgs/acme/members") || page.Previous != nil {
		t.Fatalf("page 1: count %d results %d next %v prev %v", page.Count, len(page.Results), page.Next, page.Previous)
	}
	st, _, b = c.do("GET", *page.Next, nil)
	page.Next, page.Previous = nil, nil
	if st != 200 || json.Unmarshal(b, &page) != nil || len(page.Results) != 7 || page.Next != nil || page.Previous == nil {
		t.Fatalf("page 2: %d %s", st, b)
	}
	st, _, b = c.do("GET", "/v2/orgs/acme/members?search=ED@ACME&type=member", nil)
	if st != 200 || !strings.Contains(string(b), `"role":"Editor"`) {
		t.Fatalf("search: %d %s", st, b)
	}
	st, _, _ = c.do("GET", "/v2/orgs/acme/members?page=9", nil)
	if st != 404 {
		t.Fatalf("page out of range: %d", st)
	}

	// Invites: invited, existing member, invalid; re-invite of a pending invitee.
	st, _, b = c.do("POST", "/v2/invites/bulk", map[string]any{"org": "acme", "role": "member",
		"invitees": []string{"new@corp.example", "ED@acme.example", "no such id"}})
	if st != 202 {
		t.Fatalf("bulk: %d %s", st, b)
	}
	for _, want := range []string{`"status":"invited"`, `"status":"existing_org_member"`, `"status":"invalid_email_or_docker_id"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bulk answer lacks %s: %s", want, b)
		}
	}
	c.do("POST", "/v2/invites/bulk", map[string]any{"org": "acme", "invitees": []string{"new@corp.example"}})
	if n := emu.InvitesSent("new@corp.example"); n != 2 {
		t.Errorf("re-invite sent %d emails, want 2", n)
	}
	invs := emu.Invites()
	if len(invs) != 1 {
		t.Fatalf("invites: %+v", invs)
	}
	st, _, b = c.do("GET", "/v2/orgs/acme/invites", nil)
	if st != 200 || !strings.Contains(string(b), invs[0].ID) {
		t.Fatalf("list invites: %d %s", st, b)
	}
	st, _, _ = c.do("PATCH", "/v2/invites/"+invs[0].ID+"/resend", nil)
	if st != 204 {
		t.Fatalf("resend: %d", st)
	}

	// Teams.
	st, _, b = c.do("POST", "/v2/orgs/acme/groups", map[string]string{"name": "devs", "description": "d"})
	if st != 201 {
		t.Fatalf("create team: %d %s", st, b)
	}
	st, _, b = c.do("POST", "/v2/orgs/acme/groups/", map[string]string{"name": "devs"})
	if st != 400 || !strings.Contains(string(b), `"fields"`) {
		t.Fatalf("duplicate team: %d %s", st, b)
	}
	st, _, _ = c.do("POST", "/v2/orgs/acme/groups/devs/members/", map[string]string{"member": "new@corp.example"})
	if st != 404 {
		t.Fatalf("invitee joined a team: %d", st)
	}
	if err := emu.AcceptInvite("new@corp.example", "newbie"); err != nil {
		t.Fatal(err)
	}
	st, _, b = c.do("POST", "/v2/orgs/acme/groups/devs/members", map[string]string{"member": "newbie"})
	if st != 200 {
		t.Fatalf("add team member: %d %s", st, b)
	}
	st, _, b = c.do("GET", "/v2/orgs/acme/groups/devs/members", nil)
	if st != 200 || !strings.Contains(string(b), `"username":"newbie"`) {
		t.Fatalf("team members: %d %s", st, b)
	}
	st, _, b = c.do("GET", "/v2/orgs/acme/groups", nil)
	if st != 200 || !strings.Contains(string(b), `"member_count":1`) {
		t.Fatalf("teams: %d %s", st, b)
	}
	st, _, _ = c.do("PATCH", "/v2/orgs/acme/groups/devs", map[string]string{"description": "developers"})
	if st != 200 {
		t.Fatalf("patch team: %d", st)
	}
	st, _, _ = c.do("PUT", "/v2/orgs/acme/members/newbie", map[string]string{"role": "editor"})
	if st != 200 {
		t.Fatalf("role: %d", st)
	}
	st, _, _ = c.do("DELETE", "/v2/orgs/acme/members/newbie/", nil)
	if st != 204 {
		t.Fatalf("delete member: %d", st)
	}
	if tv, _ := emu.Team("devs"); len(tv.Members) != 0 {
		t.Errorf("removed member still in team: %+v", tv)
	}
	st, _, b = c.do("DELETE", "/v2/orgs/acme/members/owner", nil)
	if st != 400 || !strings.Contains(string(b), "last owner") {
		t.Fatalf("last owner: %d %s", st, b)
	}
	st, _, _ = c.do("DELETE", "/v2/orgs/acme/groups/devs", nil)
	if st != 204 {
		t.Fatalf("delete team: %d", st)
	}
	st, _, _ = c.do("GET", "/v2/orgs/acme/groups/devs", nil)
	if st != 404 {
		t.Fatalf("deleted team: %d", st)
	}

	// Faults: 429 (both headers), HTML 502, 5xx JSON.
	emu.Inject(Fault{Kind: FaultRateLimit, Count: 1})
	emu.Inject(Fault{Kind: FaultRateLimit, LegacyRetryHeader: true, Count: 1})
	emu.Inject(Fault{Kind: FaultHTML, Count: 1})
	emu.Inject(Fault{Kind: FaultStatus, Status: 500, Count: 1})
	st, h, b := c.do("GET", "/v2/orgs/acme/invites", nil)
	if st != 429 || h.Get("Retry-After") != "1" || !strings.Contains(string(b), "Rate limit exceeded") || h.Get(FaultHeader) != "" {
		t.Fatalf("429: %d %v %s", st, h, b)
	}
	st, h, _ = c.do("GET", "/v2/orgs/acme/invites", nil)
	if st != 429 || h.Get("X-Retry-After") == "" {
		t.Fatalf("legacy 429: %d %v", st, h)
	}
	st, _, b = c.do("GET", "/v2/orgs/acme/invites", nil)
	if st != 502 || !strings.Contains(string(b), "<html>") {
		t.Fatalf("html: %d %s", st, b)
	}
	st, _, _ = c.do("GET", "/v2/orgs/acme/invites", nil)
	if st != 500 {
		t.Fatalf("500: %d", st)
	}
	if reqs, resps := v.Checked(); reqs < 25 || resps < 20 {
		t.Errorf("validator checked only %d requests, %d responses", reqs, resps)
	}
}

// TestValidatorCatchesViolations proves the validator can fail: wrong bodies, a
// missing token, an unknown path.
func TestValidatorCatchesViolations(t *testing.T) {
	v := RequireContract(t).Validator(nil)
	emu := New(Options{Middleware: v.Middleware}).Start()
	defer emu.Close()
	c := &rawClient{t: t, base: emu.URL()}
	c.do("POST", "/v2/auth/token", map[string]string{"identifier": "acme"}) // no secret
	c.do("GET", "/v2/orgs/acme/members", nil)                               // no bearer
	c.do("GET", "/orgs/acme/members", nil)                                  // not an API path
	c.token = "x"
	c.do("PUT", "/v2/orgs/acme/members/owner", map[string]string{"role": "king"})
	got := strings.Join(v.Violations(), "\n")
	for _, want := range []string{"property \"secret\" is missing", "no Bearer token", "no such call", "value is not one of the allowed values"} {
		if !strings.Contains(got, want) {
			t.Errorf("violations lack %q:\n%s", want, got)
		}
	}
}
