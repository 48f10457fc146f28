package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	dir := t.TempDir()
	src := `package x_test

import (
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega"
)

func f(g Gomega) {
	Expect(1).To(Equal(1))
	Eventually(func() int { return 1 }).WithTimeout(time.Second).Should(Equal(1))
	g.Expect(nil).NotTo(HaveOccurred())
	gomega.Consistently(func() int { return 1 }).ShouldNot(Equal(2))
	Expect(helper()).To(Succeed())
	helper()

	Eventually(func() int { return 1 })                      // bad
	Eventually(func() int { return 1 }).WithTimeout(time.Second) // bad
	Expect(1)                                                // bad
	g.Expect(nil)                                            // bad
	gomega.Consistently(func() bool { return true }).Within(time.Second) // bad
	ExpectWithOffset(1, nil)                                 // bad
	go func() { Ω(1) }()                                     // bad
}

func helper() error { return nil }
`
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	// not a test file: not checked
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte("package x\n\nfunc g() { Expect(1) }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := lintDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range got {
		// "<dir>/x_test.go:17:2: Eventually(...) has no matcher: it asserts nothing"
		rest := strings.TrimPrefix(f, filepath.Join(dir, "x_test.go")+":")
		lines = append(lines, rest[:strings.Index(rest, ":")]+" "+strings.Fields(rest)[1])
	}
	// every line marked "// bad", and only those, is reported with the assertion it starts with
	var want []string
	for i, l := range strings.Split(src, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), "// bad") {
			start := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(l), "go func() { "), "g.")
			start = strings.TrimPrefix(start, "gomega.")
			want = append(want, fmt.Sprintf("%d %s(...)", i+1, start[:strings.Index(start, "(")]))
		}
	}
	if len(want) != 7 {
		t.Fatalf("the fixture has %d bad lines, want 7", len(want))
	}
	if strings.Join(lines, "; ") != strings.Join(want, "; ") {
		t.Errorf("findings:\n %s\nwant:\n %s\n(raw: %q)", strings.Join(lines, "; "), strings.Join(want, "; "), got)
	}
}

// TestRepositoryIsClean is what `make verify` asserts, also run as a test.
func TestRepositoryIsClean(t *testing.T) {
	got, err := lintDir(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 {
		t.Errorf("assertions without a matcher:\n%s", strings.Join(got, "\n"))
	}
}
