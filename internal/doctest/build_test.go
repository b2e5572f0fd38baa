package doctest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// compileError is one error of the go build, at a Markdown position when it
// comes from a block.
type compileError struct {
	pos string // "file:line:col"
	msg string // with its continuation lines
}

func (e compileError) String() string { return e.pos + ": " + e.msg }

// fileLine is the error's "file:line".
func (e compileError) fileLine() string {
	if i := strings.LastIndexByte(e.pos, ':'); i > 0 {
		return e.pos[:i]
	}
	return e.pos
}

const modulePath = "example.com/flypgdocs"

// buildModule is a temporary copy of testdata/docmod whose replace
// directives point into this repository.
func buildModule(t *testing.T, root string) string {
	t.Helper()
	src := filepath.Join(root, "internal", "doctest", "testdata", "docmod")
	dir := t.TempDir()
	mod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(mod), "\n") {
		if before, target, ok := strings.Cut(l, "=> "); ok && strings.HasPrefix(strings.TrimSpace(l), "replace ") && strings.HasPrefix(target, ".") {
			l = before + "=> " + filepath.Join(src, target)
		}
		out = append(out, l)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	// The repository's own sums too: a dependency flypg gained since
	// docmod was last tidied is then still known.
	var sums []byte
	for _, f := range []string{filepath.Join(src, "go.sum"), filepath.Join(root, "go.sum"), filepath.Join(root, "flypgotel", "go.sum")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, b...)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var errorLine = regexp.MustCompile(`^(.+?:\d+:\d+): (.*)$`)

// compile writes each unit as a package of the module in dir and builds
// them all with one go build. It returns the errors per package name; an
// output it cannot read fails the test.
func compile(t *testing.T, dir string, units []unit) map[string][]compileError {
	t.Helper()
	for _, u := range units {
		if u.src == "" {
			continue
		}
		pd := filepath.Join(dir, u.pkg)
		if err := os.MkdirAll(pd, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pd, "doc.go"), []byte(u.src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-gcflags=-e", "./...")
	cmd.Dir = dir
	// -mod=mod: the copy may need its go.mod completed (flypg's own
	// requirements moved on); the sums are all there.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	errs := map[string][]compileError{}
	if err == nil {
		return errs
	}
	var pkg string
	var unread []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch m := errorLine.FindStringSubmatch(l); {
		case strings.HasPrefix(l, "# "):
			pkg = strings.TrimPrefix(strings.TrimPrefix(l, "# "), modulePath+"/")
		case strings.HasPrefix(l, "\t") && pkg != "" && len(errs[pkg]) > 0:
			e := &errs[pkg][len(errs[pkg])-1]
			e.msg += "\n" + l
		case m != nil && pkg != "":
			errs[pkg] = append(errs[pkg], compileError{pos: m[1], msg: m[2]})
		case strings.HasPrefix(l, "go: downloading"):
		default:
			unread = append(unread, l)
		}
	}
	if len(unread) > 0 || len(errs) == 0 {
		t.Fatalf("go build in %s failed: %v\n%s\n(if it is about go.sum: cd internal/doctest/testdata/docmod && go mod tidy)", dir, err, out)
	}
	return errs
}

// forgiven reports the errors a fragment may have because it is one (see
// the package documentation).
func forgiven(u unit, e compileError) bool {
	if !u.fragment {
		return false
	}
	first, _, _ := strings.Cut(e.msg, "\n")
	switch {
	case strings.HasPrefix(first, "declared and not used"),
		strings.HasSuffix(first, "imported and not used"),
		strings.Contains(first, "imported as ") && strings.HasSuffix(first, " and not used"):
		return true
	case first == "missing return":
		return u.elided
	case strings.HasPrefix(first, "not enough return values"), strings.HasPrefix(first, "too many return values"):
		return u.returns[e.fileLine()]
	}
	return false
}

// findRoot is the repository's root: the directory above the test's with
// the root module's go.mod.
func findRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/flypg/flypg\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no github.com/flypg/flypg go.mod above the test's directory")
		}
		dir = parent
	}
}

// pkgName is a package name for the n-th block of a file.
func pkgName(file string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSuffix(file, ".md")) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("%s_%d", b.String(), n)
}
