package naming

import "testing"

func TestNameKeyEqual(t *testing.T) {
	same := [][]string{
		{"jane@example.com", "JANE@EXAMPLE.COM", " Jane@Example.com\t"},
		{"strasse@example.com", "straße@example.com", "STRAẞE@EXAMPLE.COM", "STRASSE@example.com"},
		{"jane@example.com", "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"},                           // fullwidth
		{"josé@example.com", "jose\u0301@example.com", "JOSÉ@example.com"}, // combining acute
		{"jill@example.com", "jıll@example.com", "JİLL@example.com", "JILL@example.com", "ji\u0307ll@example.com"},
		{"jane@example.com", "ja\u200bne@example.com", "jane\u200d@example.com", "\u202ejane@example.com"}, // invisible
		{"file@example.com", "ﬁle@example.com"},                                                            // ligature
		{"kate@example.com", "\u212Aate@example.com"},                                                      // Kelvin sign
		{"σοφία", "ΣΟΦΊΑ"},
		{"σοφίας", "σοφίασ", "ΣΟΦΊΑΣ"}, // final sigma
		{"ops", "OPS", "ｏｐｓ", " ops "},
	}
	for _, group := range same {
		want := NameKey(group[0])
		for _, s := range group[1:] {
			if got := NameKey(s); got != want {
				t.Errorf("NameKey(%q) = %q, want %q (as for %q)", s, got, want, group[0])
			}
		}
	}
}

func TestNameKeyDistinct(t *testing.T) {
	for _, p := range [][2]string{
		{"josé@example.com", "jose@example.com"},   // accents matter
		{"alice@example.com", "аlice@example.com"}, // Cyrillic а is another letter
		{"jill@example.com", "jil@example.com"},
		{"a b", "ab"},
	} {
		if NameKey(p[0]) == NameKey(p[1]) {
			t.Errorf("NameKey(%q) == NameKey(%q) = %q, want them apart", p[0], p[1], NameKey(p[0]))
		}
	}
}

func TestCaselessIsIdempotentAndASCIIFast(t *testing.T) {
	for _, s := range []string{"straße", "ｓｔｒａｓｓｅ", "JİLL", "jıll", "jose\u0301", "ǅ", "ΣΑΣ", "ﬃ", "x\u200by", "İ\u0301"} {
		k := Caseless(s)
		if Caseless(k) != k {
			t.Errorf("Caseless(Caseless(%q)) = %q, want %q", s, Caseless(k), k)
		}
	}
	for _, s := range []string{"Jane.Doe+tag@Example.COM", "A-Z_0-9 ~!", "\x00\x7f"} {
		// the slow path on the same text: an invisible character forces it and is dropped
		if slow := Caseless(s + "\u200b"); slow != Caseless(s) {
			t.Errorf("Caseless(%q): fast %q, slow %q", s, Caseless(s), slow)
		}
	}
}

func TestMemberNameFollowsNameKey(t *testing.T) {
	if MemberName("c", "straße@example.com") != MemberName("c", "STRASSE@example.com") {
		t.Error("two userNames with one NameKey must derive one object name")
	}
	if MemberName("c", "Jane@Example.com") != "u-"+digest("c", "jane@example.com") {
		t.Error("an ASCII userName derives the name it always did")
	}
	if GroupName("c", " Ops ") != "g-"+digest("c", "ops") {
		t.Error("an ASCII displayName derives the name it always did")
	}
}
