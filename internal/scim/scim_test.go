package scim

import (
	"encoding/json"
	"strings"
	"testing"
)

func decode(t *testing.T, s string) Resource {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return Canonicalize(UserType, m)
}

const alice = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u-1","externalId":"Ext-1",
 "userName":"Alice@Example.com","displayName":"Alice A","active":true,"title":"",
 "name":{"givenName":"Alice","familyName":"Anders"},
 "emails":[{"value":"alice@example.com","type":"work","primary":true},{"value":"al@home.org","type":"home"}],
 "meta":{"created":"2024-01-02T03:04:05Z","lastModified":"2024-06-01T00:00:00Z"},
 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42","manager":{"value":"u-9"}}}`

func TestFilterOperators(t *testing.T) {
	res := decode(t, alice)
	cases := []struct {
		f    string
		want bool
	}{
		{`userName eq "alice@example.com"`, true},
		{`USERNAME Eq "ALICE@EXAMPLE.COM"`, true},
		{`userName ne "alice@example.com"`, false},
		{`userName co "example"`, true},
		{`userName sw "ali"`, true},
		{`userName ew ".COM"`, true},
		{`userName gt "a"`, true},
		{`userName ge "alice@example.com"`, true},
		{`userName lt "b"`, true},
		{`userName le "a"`, false},
		{`title pr`, false},
		{`displayName pr`, true},
		{`nickName pr`, false},
		{`externalId eq "ext-1"`, false}, // caseExact
		{`externalId eq "Ext-1"`, true},
		{`id eq "u-1"`, true},
		{`active eq true`, true},
		{`active eq false`, false},
		{`name.givenName eq "alice"`, true},
		{`emails.value eq "al@home.org"`, true},
		{`emails eq "al@home.org"`, true},
		{`emails[type eq "work" and value co "alice"]`, true},
		{`emails[type eq "home" and primary eq true]`, false},
		{`emails[type eq "work"].value eq "alice@example.com"`, true},
		{`emails[type eq "home"].value eq "alice@example.com"`, false},
		{`emails[type eq "work"].value pr`, true},
		{`not (userName eq "bob")`, true},
		{`userName eq "bob" or (displayName sw "Alice" and active eq true)`, true},
		{`meta.created gt "2023-12-31T00:00:00Z"`, true},
		{`meta.lastModified lt "2024-01-01T00:00:00+01:00"`, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42"`, true},
		{`URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:employeeNumber eq "42"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u-9"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "alice"`, true},
		{`name.familyName eq Anders and (emails.value co example.com or emails.value co example.org)`, true}, // unquoted
		{`userName sw A`, true},
		{`userName eq "al\"ice"`, false},
		{`nickName eq null`, true},
	}
	for _, c := range cases {
		f, err := ParseFilter(UserType, c.f)
		if err != nil {
			t.Errorf("%s: %v", c.f, err)
			continue
		}
		if got := f.Match(res); got != c.want {
			t.Errorf("%s: got %v, want %v", c.f, got, c.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for _, s := range []string{``, `userName`, `userName eq`, `userName zz "x"`, `(userName eq "x"`, `userName eq "x" and`, strings.Repeat("a", MaxFilterLength+1)} {
		_, err := ParseFilter(UserType, s)
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != ErrInvalidFilter {
			t.Errorf("%q: want 400 invalidFilter, got %v", s, err)
		}
	}
}

func TestEqualityValue(t *testing.T) {
	f, err := ParseFilter(UserType, `userName eq "A@b.c" and active eq true`)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.EqualityValue("username"); !ok || v != "A@b.c" {
		t.Fatalf("got %q %v", v, ok)
	}
	if f, err = ParseFilter(UserType, `userName eq "a" or userName eq "b"`); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.EqualityValue("userName"); ok {
		t.Fatal("or must not narrow")
	}
}

func patch(t *testing.T, rt *ResourceType, res Resource, ops string) (*MemberDelta, error) {
	t.Helper()
	var p PatchRequest
	if err := json.Unmarshal([]byte(ops), &p); err != nil {
		t.Fatal(err)
	}
	return ApplyPatch(rt, res, p.Operations)
}

func TestPatchEntra(t *testing.T) {
	res := decode(t, alice)
	_, err := patch(t, UserType, res, `{"Operations":[
	 {"op":"Replace","path":"active","value":"False"},
	 {"op":"replace","value":{"displayName":"AA","name.givenName":"Al","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"7"}},
	 {"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@example.com"},
	 {"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"123"},
	 {"op":"remove","path":"emails[type eq \"home\"]"},
	 {"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"R&D"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	got := string(b)
	for _, want := range []string{`"active":false`, `"displayName":"AA"`, `"givenName":"Al"`, `"familyName":"Anders"`,
		`"employeeNumber":"7"`, `"department":"R\u0026D"`, `{"primary":true,"type":"work","value":"new@example.com"}`,
		`"phoneNumbers":[{"type":"mobile","value":"123"}]`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in %s", want, got)
		}
	}
	if strings.Contains(got, "al@home.org") {
		t.Errorf("home email not removed: %s", got)
	}
}

func TestPatchOkta(t *testing.T) {
	res := decode(t, alice)
	if _, err := patch(t, UserType, res, `{"Operations":[{"op":"replace","value":{"active":false}}]}`); err != nil {
		t.Fatal(err)
	}
	if res["active"] != false {
		t.Fatalf("active = %v", res["active"])
	}
	if _, err := patch(t, UserType, res, `{"Operations":[{"op":"add","path":"emails","value":[{"value":"x@y.z","primary":true}]}]}`); err != nil {
		t.Fatal(err)
	}
	primaries := 0
	for _, e := range res["emails"].([]any) {
		if e.(map[string]any)["primary"] == true {
			primaries++
		}
	}
	if primaries != 1 {
		t.Fatalf("adding a primary email must clear the others: %v", res["emails"])
	}
}

func TestPatchErrors(t *testing.T) {
	for _, c := range []struct{ ops, scimType string }{
		{`{"Operations":[]}`, ErrInvalidValue},
		{`{"Operations":[{"op":"move","path":"a"}]}`, ErrInvalidSyntax},
		{`{"Operations":[{"op":"remove"}]}`, ErrNoTarget},
		{`{"Operations":[{"op":"add","value":"x"}]}`, ErrInvalidValue},
		{`{"Operations":[{"op":"add","path":"emails[type eq"}]}`, ErrInvalidPath},
		{`{"Operations":[{"op":"replace","path":"userName"}]}`, ErrInvalidValue},
		{`{"Operations":[{"op":"replace","path":"displayName[value eq \"x\"]","value":"y"}]}`, ErrInvalidPath},
	} {
		_, err := patch(t, UserType, decode(t, alice), c.ops)
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != c.scimType {
			t.Errorf("%s: want 400 %s, got %v", c.ops, c.scimType, err)
		}
	}
}

func TestPatchMembers(t *testing.T) {
	g := Resource{"displayName": "g"}
	d, err := patch(t, GroupType, g, `{"Operations":[
	 {"op":"Add","path":"members","value":[{"value":"a","$ref":null},{"value":"b"},{"value":"c","display":"C"}]},
	 {"op":"Remove","path":"members","value":[{"value":"a"}]},
	 {"op":"remove","path":"members[value eq \"b\"]"},
	 {"op":"replace","value":{"id":"ignored","displayName":"G2"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if d.Clear || strings.Join(d.Add, ",") != "c" || strings.Join(d.Remove, ",") != "a,b" {
		t.Fatalf("delta %+v", d)
	}
	if g["displayName"] != "G2" || g["id"] != nil {
		t.Fatalf("group %v", g)
	}
	if d, err = patch(t, GroupType, g, `{"Operations":[{"op":"remove","path":"members"},{"op":"add","path":"members","value":[{"value":"z"}]}]}`); err != nil {
		t.Fatal(err)
	}
	if !d.Clear || strings.Join(d.Add, ",") != "z" {
		t.Fatalf("delta %+v", d)
	}
	if d, err = patch(t, GroupType, g, `{"Operations":[{"op":"remove","path":"members[value eq \"x\" or value eq \"y\"]"}]}`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Remove, ",") != "x,y" {
		t.Fatalf("delta %+v", d)
	}
}

func TestProjection(t *testing.T) {
	res := decode(t, alice)
	Project(UserType, res, []string{"userName", "name.givenName", "emails[type eq \"work\"]"}, nil)
	b, _ := json.Marshal(res)
	got := string(b)
	for _, want := range []string{`"id"`, `"schemas"`, `"userName"`, `"givenName"`, `"emails"`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s: %s", want, got)
		}
	}
	for _, absent := range []string{`familyName`, `displayName`, `employeeNumber`} {
		if strings.Contains(got, absent) {
			t.Errorf("%s should be gone: %s", absent, got)
		}
	}
	res = decode(t, alice)
	Project(UserType, res, nil, []string{"emails", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "id"})
	if res["emails"] != nil || res["id"] == nil {
		t.Errorf("excluded: %v", res)
	}
	if _, ok := res[SchemaEnterpriseUser].(map[string]any)["employeeNumber"]; ok {
		t.Errorf("employeeNumber not excluded")
	}
}

func TestCanonicalize(t *testing.T) {
	r := decode(t, `{"USERNAME":"x","Active":"True","Emails":[{"Value":"a@b.c","Primary":"true"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department":"D","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:DOCKER:2.0:USER":{"DockerRole":"owner"}}`)
	b, _ := json.Marshal(r)
	want := `{"active":true,"emails":[{"primary":true,"value":"a@b.c"}],"urn:ietf:params:scim:schemas:extension:docker:2.0:User":{"dockerRole":"owner"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D"},"userName":"x"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestSortAndPage(t *testing.T) {
	l := []Resource{{"id": "3", "userName": "b"}, {"id": "1", "userName": "B"}, {"id": "2"}, {"id": "0", "userName": "a"}}
	if err := SortResources(UserType, l, "userName", ""); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range l {
		ids = append(ids, r["id"].(string))
	}
	if strings.Join(ids, ",") != "0,1,3,2" {
		t.Fatalf("order %v", ids)
	}
	if err := SortResources(UserType, l, "userName", "sideways"); err == nil {
		t.Fatal("bad sortOrder accepted")
	}
	zero, big, neg := 0, 5000, -3
	for _, c := range []struct {
		q            Query
		start, count int
	}{{Query{}, 1, DefaultCount}, {Query{StartIndex: -4, Count: &zero}, 1, 0}, {Query{Count: &big}, 1, MaxCount}, {Query{StartIndex: 3, Count: &neg}, 3, 0}} {
		s, n := c.q.Page()
		if s != c.start || n != c.count {
			t.Errorf("%+v: got %d %d", c.q, s, n)
		}
	}
}

func TestErrorBody(t *testing.T) {
	b, _ := json.Marshal(BadRequest(ErrUniqueness, "dup %s", "x"))
	if string(b) != `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"uniqueness","detail":"dup x"}` {
		t.Fatal(string(b))
	}
}

// Issue 9 item 6a: a value filter (the part in brackets) is any logical expression, as
// RFC 7644 3.4.2.2 and 3.5.2 allow, not one or two terms.
func TestValueFilterExpressions(t *testing.T) {
	res := decode(t, alice)
	cases := []struct {
		f    string
		want bool
	}{
		{`emails[type eq "work" and primary eq true and value co "alice"]`, true},
		{`emails[type eq "work" and primary eq true and value co "bob"]`, false},
		{`emails[type eq "home" or type eq "other" or value eq "alice@example.com"]`, true},
		{`emails[type eq "x" or type eq "y" or type eq "z"]`, false},
		{`emails[(type eq "home" or type eq "work") and not (primary eq true)]`, true},
		{`emails[(type eq "other" or type eq "work") and not (primary eq true)]`, false},
		{`emails[not (type eq "work" or type eq "home")]`, false},
		{`emails[type eq "work" and (value sw "al@" or value ew "@example.com")]`, true},
		{`emails[((type eq "home"))]`, true},
		{`EMAILS[TYPE EQ "home" OR TYPE EQ "x" OR TYPE EQ "y"] and userName sw "alice"`, true},
		{`emails[type eq "x" or type eq "y" or type eq "home"] and phoneNumbers[type eq "a" or type eq "b" or type eq "c"]`, false},
		{`not (emails[type eq "x" or type eq "y" or type eq "home"])`, false},
		// Entra's trailing comparison joins an or-filter as a whole: the home email is not
		// alice@example.com, so "or" must not bind tighter than the added "and"
		{`emails[type eq "home" or type eq "other"].value eq "alice@example.com"`, false},
		{`emails[type eq "home" or type eq "work"].value eq "alice@example.com"`, true},
		{`emails[type eq "home" or type eq "other"].value pr`, true},
		{`emails[type eq "x" or type eq "other"].value pr`, false},
	}
	for _, c := range cases {
		f, err := ParseFilter(UserType, c.f)
		if err != nil {
			t.Errorf("%s: %v", c.f, err)
			continue
		}
		if got := f.Match(res); got != c.want {
			t.Errorf("%s: got %v, want %v", c.f, got, c.want)
		}
	}
	for _, c := range []struct{ f, detail string }{
		{`emails[type eq "work" and]`, `invalid filter "emails[type eq \"work\" and]": syntax error`},
		{`emails[]`, `invalid filter "emails[]": the value filter of emails is empty`},
		{`emails[type eq "work"`, `invalid filter "emails[type eq \"work\"": a value filter is not closed by ]`},
		{`emails[type[value eq "x"] pr]`, `invalid filter "emails[type[value eq \"x\"] pr]": value filters cannot be nested`},
		{`emails[type eq "work"]]`, `invalid filter "emails[type eq \"work\"]]": syntax error`},
	} {
		_, err := ParseFilter(UserType, c.f)
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != ErrInvalidFilter || !strings.HasPrefix(se.Detail, c.detail) {
			t.Errorf("%s: want 400 invalidFilter %q, got %v", c.f, c.detail, err)
		}
	}
}

func TestPatchValueFilterExpressions(t *testing.T) {
	g := Resource{"displayName": "g"}
	d, err := patch(t, GroupType, g, `{"Operations":[{"op":"remove","path":"members[value eq \"a\" or value eq \"b\" or value eq \"c\"]"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Remove, ",") != "a,b,c" {
		t.Fatalf("delta %+v", d)
	}
	if d, err = patch(t, GroupType, g, `{"Operations":[{"op":"add","path":"members[value eq \"a\" or (value eq \"b\" or value eq \"c\")]"}]}`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Add, ",") != "a,b,c" {
		t.Fatalf("delta %+v", d)
	}
	res := decode(t, alice)
	if _, err := patch(t, UserType, res, `{"Operations":[
	 {"op":"replace","path":"emails[type eq \"work\" and primary eq true and value co \"alice\"].display","value":"Work"},
	 {"op":"replace","path":"emails[(type eq \"home\" or type eq \"other\") and not (primary eq true)].display","value":"Home"},
	 {"op":"remove","path":"emails[type eq \"x\" or type eq \"y\" or value eq \"nobody\"]"}]}`); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res["emails"])
	if got, want := string(b), `[{"display":"Work","primary":true,"type":"work","value":"alice@example.com"},{"display":"Home","type":"home","value":"al@home.org"}]`; got != want {
		t.Fatalf("emails\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct{ path, scimType, detail string }{
		{`members[value eq \"a\" or]`, ErrInvalidPath, `operation 1: invalid path "members[value eq \"a\" or]": syntax error`},
		{`members[value eq \"a\" or display eq \"b\" or value eq \"c\"]`, ErrInvalidFilter, `operation 1: member filters must have the form value eq "<id>" (or several joined by or)`},
	} {
		_, err := patch(t, GroupType, Resource{"displayName": "g"}, `{"Operations":[{"op":"remove","path":"`+c.path+`"}]}`)
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != c.scimType || !strings.HasPrefix(se.Detail, c.detail) {
			t.Errorf("%s: want 400 %s %q, got %v", c.path, c.scimType, c.detail, err)
		}
	}
}

// Issue 9 item 6d: a schema URN may hold characters such as "_" (RFC 8141); an unknown
// extension's attributes are ignored in PATCH paths and match nothing in filters,
// whatever characters its URN has.
func TestUnknownExtensionURNs(t *testing.T) {
	const myExt = "urn:ietf:params:scim:schemas:extension:my_ext:2.0:User"
	before := decode(t, alice)
	want, _ := json.Marshal(before)
	for _, ops := range []string{
		`[{"op":"add","path":"` + myExt + `:x","value":"1"}]`,
		`[{"op":"replace","path":"` + myExt + `:x.y","value":"1"}]`,
		`[{"op":"replace","path":"` + myExt + `:emails[type eq \"work\" or type eq \"home\"].value","value":"z@example.com"}]`,
		`[{"op":"remove","path":"` + myExt + `:x"}]`,
		`[{"op":"add","path":"` + myExt + `","value":{"x":"1"}}]`,
		`[{"op":"add","path":"urn:example:other~ext:1.0:User:x","value":"1"}]`,
		`[{"op":"replace","value":{"` + myExt + `:x":"1","` + myExt + `":{"y":"2"}}}]`,
		`[{"op":"add","path":"urn:example:other:1.0:User:x","value":"1"}]`, // what the _ forms must answer like
	} {
		res := decode(t, alice)
		if _, err := patch(t, UserType, res, `{"Operations":`+ops+`}`); err != nil {
			t.Errorf("%s: %v", ops, err)
			continue
		}
		if got, _ := json.Marshal(res); string(got) != string(want) {
			t.Errorf("%s changed the user:\n got %s\nwant %s", ops, got, want)
		}
	}
	for _, c := range []struct{ path, detail string }{
		{myExt + `:`, `operation 1: invalid path "` + myExt + `:": syntax error`},
		{myExt + `:x y`, `operation 1: invalid path "` + myExt + `:x y": syntax error`},
		{`:x`, `operation 1: invalid path ":x": syntax error`},
	} {
		_, err := patch(t, UserType, decode(t, alice), `{"Operations":[{"op":"add","path":"`+c.path+`","value":"1"}]}`)
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != ErrInvalidPath || !strings.HasPrefix(se.Detail, c.detail) {
			t.Errorf("%s: want 400 invalidPath %q, got %v", c.path, c.detail, err)
		}
	}
	for _, c := range []struct {
		f    string
		want bool
	}{
		{myExt + `:x eq "1"`, false},
		{myExt + `:x pr`, false},
		{`not (` + myExt + `:x pr)`, true},
		{`userName sw "alice" and not (` + myExt + `:x.y eq "1")`, true},
		{myExt + `:emails[type eq "work" or value pr]`, false},
		{`urn:example:other~ext:1.0:User:x eq "1" or ` + myExt + `:x ne "1"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42" and ` + myExt + `:x eq null`, true},
	} {
		f, err := ParseFilter(UserType, c.f)
		if err != nil {
			t.Errorf("%s: %v", c.f, err)
			continue
		}
		if got := f.Match(before); got != c.want {
			t.Errorf("%s: got %v, want %v", c.f, got, c.want)
		}
	}
}

// Issue 9 item 6b: a comparison on a multi-valued attribute applies to each value, and
// matches when any value matches (RFC 7644 3.4.2.2); "ne" therefore means "some value
// differs", not "no value equals". not (...) negates the whole expression.
func TestMultiValuedOperators(t *testing.T) {
	bob := decode(t, `{"userName":"bob@example.com","emails":[{"value":"bob@work.example","type":"work","primary":true},
	 {"value":"bob@home.example","type":"home"},{"value":"b@x.example"}]}`)
	carol := decode(t, `{"userName":"carol@example.com","emails":[{"value":"carol@work.example","type":"work"}]}`)
	cases := []struct {
		f          string
		bob, carol bool
	}{
		{`emails.type ne "work"`, true, false},
		{`emails.type ne "home"`, true, true},
		{`emails.value ne "bob@work.example"`, true, true},
		{`emails ne "carol@work.example"`, true, false},
		{`emails.type eq "work"`, true, true},
		{`not (emails.type eq "work")`, false, false},
		{`not (emails.type ne "work")`, false, true},
		{`emails[type ne "work"]`, true, false},
		{`emails[type ne "work" and type ne "home"]`, true, false},
		{`emails.primary ne true`, true, true},
		{`emails.primary eq true`, true, false},
		{`emails.type eq null`, true, false},
		{`emails.type ne null`, true, true},
		{`emails.display eq null`, true, true},
		{`emails.display ne null`, false, false},
		{`emails.value co "home"`, true, false},
		{`emails.value sw "b@"`, true, false},
		{`emails.value ew "work.example"`, true, true},
		{`emails.value gt "bob@work.example"`, false, true},
		{`emails.value lt "bob@i"`, true, false},
		{`emails.value ge "carol@work.example"`, false, true},
		{`emails.value le "b@x.example"`, true, false},
		{`emails.type pr`, true, true},
		{`phoneNumbers.value ne "1"`, true, true}, // no value at all: none equals
		{`phoneNumbers.value eq null`, true, true},
	}
	for _, c := range cases {
		f, err := ParseFilter(UserType, c.f)
		if err != nil {
			t.Errorf("%s: %v", c.f, err)
			continue
		}
		if got := f.Match(bob); got != c.bob {
			t.Errorf("%s on bob: got %v, want %v", c.f, got, c.bob)
		}
		if got := f.Match(carol); got != c.carol {
			t.Errorf("%s on carol: got %v, want %v", c.f, got, c.carol)
		}
	}
}

// Issue 9 item 6c: RFC 7644 3.4.2.2 refuses ordering comparisons (gt ge lt le) on
// boolean and binary attributes with 400 invalidFilter; substring operators (co sw ew)
// mean nothing on a boolean, and a complex attribute is compared through its
// sub-attributes.
func TestFilterOperatorTypes(t *testing.T) {
	photoType := &ResourceType{ID: "T", Schema: &Schema{ID: "urn:example:T", Attributes: []Attribute{
		{Name: "photo", Type: "binary"}, {Name: "flags", Type: "boolean", MultiValued: true}}}}
	const boolOps, binOps = "booleans take eq, ne and pr", "binary attributes cannot be ordered"
	for _, c := range []struct {
		rt     *ResourceType
		f      string
		detail string
	}{
		{UserType, `active gt true`, `gt is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `active GE false`, `ge is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `active lt true`, `lt is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `active le "true"`, `le is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `active co "t"`, `co is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `active sw "t"`, `sw is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `active ew "e"`, `ew is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `userName pr and not (active gt false)`, `gt is not allowed on the boolean attribute active: ` + boolOps},
		{UserType, `emails.primary gt true`, `gt is not allowed on the boolean attribute emails.primary: ` + boolOps},
		{UserType, `emails[type eq "work" or primary co "t"]`, `co is not allowed on the boolean attribute emails.primary: ` + boolOps},
		{UserType, `emails[type eq "work"].primary lt true`, `lt is not allowed on the boolean attribute emails.primary: ` + boolOps},
		{UserType, `name gt "a"`, `gt is not allowed on the complex attribute name: compare one of its sub-attributes (name.<sub-attribute>) or test it with pr`},
		{UserType, `name eq "Alice"`, `eq is not allowed on the complex attribute name: compare one of its sub-attributes (name.<sub-attribute>) or test it with pr`},
		{UserType, `meta co "2024"`, `co is not allowed on the complex attribute meta: compare one of its sub-attributes (meta.<sub-attribute>) or test it with pr`},
		{UserType, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "u-9"`, `eq is not allowed on the complex attribute manager: compare one of its sub-attributes (manager.<sub-attribute>) or test it with pr`},
		{photoType, `photo gt "AAAA"`, `gt is not allowed on the binary attribute photo: ` + binOps},
		{photoType, `flags le true`, `le is not allowed on the boolean attribute flags: ` + boolOps},
	} {
		_, err := ParseFilter(c.rt, c.f)
		want := "invalid filter " + strconvQuote(c.f) + ": " + c.detail
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != ErrInvalidFilter || se.Detail != want {
			t.Errorf("%s:\n got %v\nwant 400 invalidFilter %s", c.f, err, want)
		}
	}
	for _, c := range []struct {
		rt *ResourceType
		f  string
	}{
		{UserType, `active eq true`}, {UserType, `active ne false`}, {UserType, `active pr`}, {UserType, `active eq "True"`},
		{UserType, `emails.primary eq true`}, {UserType, `emails[primary ne true]`}, {UserType, `name pr`},
		{UserType, `name.givenName gt "a"`}, {UserType, `emails gt "a"`}, {UserType, `meta.created ge "2024-01-01T00:00:00Z"`},
		{UserType, `meta.created co "2024"`}, {UserType, `nickName gt true`}, {UserType, `unknown.sub lt 3`},
		{UserType, `urn:example:other:1.0:User:active gt true`}, {UserType, `userName.x gt true`},
		{photoType, `photo eq "AAAA"`}, {photoType, `photo co "AA"`}, {photoType, `flags eq true`},
	} {
		if _, err := ParseFilter(c.rt, c.f); err != nil {
			t.Errorf("%s: %v", c.f, err)
		}
	}
	for _, c := range []struct{ path, detail string }{
		{`emails[primary gt true].value`, `operation 1: invalid filter in path "emails[primary gt true].value": gt is not allowed on the boolean attribute emails.primary: ` + boolOps},
		{`emails[type eq \"work\" and not (primary sw \"t\")]`, `operation 1: invalid filter in path "emails[type eq \"work\" and not (primary sw \"t\")]": sw is not allowed on the boolean attribute emails.primary: ` + boolOps},
	} {
		_, err := patch(t, UserType, decode(t, alice), `{"Operations":[{"op":"replace","path":"`+c.path+`","value":"x"}]}`)
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != ErrInvalidFilter || se.Detail != c.detail {
			t.Errorf("%s:\n got %v\nwant 400 invalidFilter %s", c.path, err, c.detail)
		}
	}
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestParseETags(t *testing.T) {
	for _, c := range []struct {
		in   []string
		any  bool
		tags string
	}{
		{nil, false, ""},
		{[]string{""}, false, ""},
		{[]string{"*"}, true, ""},
		{[]string{`W/"7"`}, false, "7"},
		{[]string{`"7"`}, false, "7"},
		{[]string{`W/"1", W/"7"`}, false, "1|7"},
		{[]string{` "1" ,W/"7",, w/"9"`}, false, "1|7|9"},
		{[]string{`W/"1"`, `"2"`}, false, "1|2"},
		{[]string{`W/"a,b", "c"`}, false, "a,b|c"},
		{[]string{`7, W/8`}, false, "7|8"},
		{[]string{`W/""`}, false, ""},
		{[]string{`"unterminated`}, false, "unterminated"},
		{[]string{`*, W/"1"`}, true, "1"},
	} {
		l := ParseETags(c.in)
		if l.Any != c.any || strings.Join(l.Tags, "|") != c.tags {
			t.Errorf("%q: got any=%v tags=%q, want any=%v tags=%q", c.in, l.Any, strings.Join(l.Tags, "|"), c.any, c.tags)
		}
	}
	l := ParseETags([]string{`"1", "7"`})
	for etag, want := range map[string]bool{`W/"7"`: true, `"7"`: true, `W/"1"`: true, `W/"8"`: false, `W/"17"`: false} {
		if l.MatchesWeak(etag) != want {
			t.Errorf("%s: want %v", etag, want)
		}
	}
	if !ParseETags([]string{"*"}).MatchesWeak(`W/"3"`) || ParseETags(nil).MatchesWeak(`W/"3"`) {
		t.Error("* matches every version, no header none")
	}
}
