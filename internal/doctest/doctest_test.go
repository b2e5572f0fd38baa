package doctest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// canaries are blocks that must fail, compiled with the docs: proof that a
// broken block is caught, and reported where it is.
const canaries = "```go\n" +
	"db := node.OpenDB()\n" +
	"_ = flypg.NoSuchFunction(ctx)\n" + // line 3
	"```\n" +
	"```go\n" +
	"flypg.RegisterProc(\"x\", func(ctx context.Context, db *sql.DB, req int) (int, error) {\n" +
	"\treturn 1\n" + // line 7: a function literal's return count is the API's
	"})\n" +
	"```\n" +
	"```go nocompile\n" +
	"fmt.Println(\"this compiles, so the marker is wrong\")\n" +
	"```\n"

// TestDocs compiles every Go block of README.md and docs/*.md.
func TestDocs(t *testing.T) {
	root := findRoot(t)
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	for _, f := range more {
		rel, err := filepath.Rel(root, f)
		require.NoError(t, err)
		files = append(files, filepath.ToSlash(rel))
	}
	var units []unit
	add := func(file, text string) {
		n := 0
		for _, b := range codeBlocks(file, text) {
			if b.lang != "go" {
				continue
			}
			n++
			units = append(units, makeUnit(b, pkgName(file, n)))
		}
	}
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		add(f, string(text))
	}
	require.NotEmpty(t, units, "the docs have Go blocks")
	add("canary.md", canaries)

	errs := compile(t, buildModule(t, root), units)

	// The canaries: caught, at their lines.
	assert.Contains(t, joined(errs["canary_1"]), "canary.md:3:", "an unknown function is reported at its line")
	assert.Contains(t, joined(errs["canary_1"]), "NoSuchFunction")
	assert.Contains(t, joined(errs["canary_2"]), "canary.md:7:", "a function literal's wrong result count is not forgiven")
	require.Empty(t, errs["canary_3"], "the nocompile canary compiles")

	checked := 0
	for _, u := range units {
		if u.b.file == "canary.md" {
			continue
		}
		if u.err != nil {
			t.Error(u.err)
			continue
		}
		var left []string
		for _, e := range errs[u.pkg] {
			if !forgiven(u, e) {
				left = append(left, e.String())
			}
		}
		switch {
		case u.b.has("nocompile") && len(errs[u.pkg]) == 0:
			t.Errorf("%s:%d: the block is marked nocompile but compiles: remove the marker", u.b.file, u.b.line)
		case u.b.has("nocompile"):
		case len(left) > 0:
			t.Errorf("%s:%d: the Go block does not compile:\n\t%s", u.b.file, u.b.line, strings.Join(left, "\n\t"))
		default:
			checked++
		}
	}
	t.Logf("%d Go blocks compile (%d files)", checked, len(files))
}

func joined(errs []compileError) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.String())
	}
	return strings.Join(s, "\n")
}

// TestImportTable checks that testdata/docmod/imports.go imports exactly
// the paths of the import table, so that go mod tidy there keeps them all.
func TestImportTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("testdata", "docmod", "imports.go"), nil, parser.ImportsOnly)
	require.NoError(t, err)
	var got []string
	for _, s := range f.Imports {
		p, err := strconv.Unquote(s.Path.Value)
		require.NoError(t, err)
		got = append(got, p)
	}
	want := slices.Clone(blankImports)
	for _, p := range imports {
		want = append(want, p)
	}
	for _, p := range envImports {
		want = append(want, p)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	slices.Sort(got)
	assert.Equal(t, want, got)
}

func TestCodeBlocks(t *testing.T) {
	text := strings.Join([]string{
		"# Title",            // 1
		"```go",              // 2
		"x := 1",             // 3
		"```",                // 4
		"- item:",            // 5
		"  ````go nocompile", // 6
		"  a",                // 7
		"  ```",              // 8: shorter: not a close
		"  ````",             // 9
		"~~~sh",              // 10
		"echo",               // 11
		"~~~",                // 12
		"```",                // 13: unclosed, no info
		"tail",               // 14
	}, "\n")
	got := codeBlocks("x.md", text)
	require.Len(t, got, 4)
	assert.Equal(t, block{file: "x.md", line: 3, lang: "go", flags: []string{}, code: []string{"x := 1"}}, got[0])
	assert.Equal(t, block{file: "x.md", line: 7, lang: "go", flags: []string{"nocompile"}, code: []string{"a", "```"}}, got[1])
	assert.True(t, got[1].has("nocompile"))
	assert.Equal(t, "sh", got[2].lang)
	assert.Equal(t, []string{"echo"}, got[2].code)
	assert.Equal(t, block{file: "x.md", line: 14, code: []string{"tail"}}, got[3])
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		k, j  int
	}{
		{"statements", []string{"x := 1", "_ = x"}, 0, 2},
		{"imports first", []string{"import \"fmt\"", "", "fmt.Println()"}, 2, 3},
		{"declarations first", []string{"type T struct{}", "", "func (T) M() {}", "var t T", "t.M()"}, 3, 5},
		{"declarations last", []string{"f()", "func f() {}"}, 0, 1},
		{"a var stays a statement", []string{"var n = node.Stats()", "_ = n"}, 0, 2},
		{"only declarations", []string{"func f() {}"}, 1, 1},
		{"types before methods", []string{"type T struct{}", "func (T) M() {}"}, 2, 2},
		{"only imports", []string{"import _ \"embed\""}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, j, err := split(tc.lines)
			require.NoError(t, err)
			assert.Equal(t, []int{tc.k, tc.j}, []int{k, j})
		})
	}
	_, _, err := split([]string{"x := ", "func"})
	assert.Error(t, err, "neither declarations nor statements")
}

func TestMakeUnit(t *testing.T) {
	b := block{file: "d.md", line: 10, lang: "go", code: []string{
		"import \"os\"",
		"",
		"db, err := sql.Open(\"flypg\", os.Getenv(\"DATABASE_URL\"))",
		"...",
		"return err",
	}}
	u := makeUnit(b, "d_1")
	require.NoError(t, u.err)
	assert.True(t, u.fragment)
	assert.True(t, u.elided)
	assert.Contains(t, u.src, "\tsql \"database/sql\"\n", "sql is imported from the table")
	assert.NotContains(t, u.src, "\tos \"os\"", "os is imported by the block itself")
	assert.Contains(t, u.src, "//line d.md:12:1\ndb, err :=", "statements map to their Markdown line")
	assert.Equal(t, map[string]bool{"d.md:14": true}, u.returns)
	_, err := parser.ParseFile(token.NewFileSet(), "", u.src, 0)
	require.NoError(t, err, "the generated file parses:\n%s", u.src)

	full := makeUnit(block{file: "d.md", line: 1, code: []string{"// A program.", "package main", "", "func main() {}"}}, "d_2")
	assert.False(t, full.fragment)
	assert.Contains(t, full.src, "package d_2\n", "a complete file gets its own package name")

	assert.True(t, forgiven(u, compileError{pos: "d.md:14:1", msg: "too many return values\n\thave (error)"}))
	assert.False(t, forgiven(u, compileError{pos: "d.md:13:1", msg: "too many return values"}), "not the fragment's own return")
	assert.True(t, forgiven(u, compileError{pos: "d.md:12:1", msg: "declared and not used: db"}))
	assert.True(t, forgiven(u, compileError{pos: "d.md:10:1", msg: `"os" imported and not used`}))
	assert.False(t, forgiven(u, compileError{pos: "d.md:12:1", msg: "undefined: flypg.Nope"}))
	assert.False(t, forgiven(full, compileError{pos: "d.md:4:1", msg: "declared and not used: x"}), "complete files are compiled as they are")
}
