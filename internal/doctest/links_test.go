package doctest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	mdLink  = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// prose is a Markdown text without its fenced code blocks and inline code
// spans, where links and headings are.
func prose(text string) []string {
	var out []string
	fenced := ""
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimLeft(l, " \t")
		if f := fenceOf(t); f != "" {
			switch {
			case fenced == "":
				fenced = f
				continue
			case f[0] == fenced[0] && len(f) >= len(fenced) && strings.TrimSpace(t[len(f):]) == "":
				fenced = ""
				continue
			}
		}
		if fenced != "" {
			out = append(out, "")
			continue
		}
		out = append(out, stripCode(l))
	}
	return out
}

// stripCode removes `code spans` from a line.
func stripCode(l string) string {
	var b strings.Builder
	in := false
	for _, r := range l {
		if r == '`' {
			in = !in
			continue
		}
		if !in {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors are the heading anchors GitHub makes for a Markdown text:
// lower-cased, punctuation but hyphens and underscores dropped, spaces made
// hyphens, and -1, -2, … for repeats.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := ""
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimLeft(l, " \t")
		if f := fenceOf(t); f != "" {
			if fenced == "" {
				fenced = f
			} else if f[0] == fenced[0] && len(f) >= len(fenced) {
				fenced = ""
			}
			continue
		}
		m := heading.FindStringSubmatch(l)
		if fenced != "" || m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.ReplaceAll(m[1], "`", "")) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}

// TestLinks checks that every relative link of README.md and docs/*.md
// names a file of the repository, and, into a Markdown file, a heading it
// has.
func TestLinks(t *testing.T) {
	root := findRoot(t)
	files := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	files = append(files, more...)
	checked := 0
	for _, f := range files {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, f)
		for i, l := range prose(string(text)) {
			for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, frag, _ := strings.Cut(target, "#")
				dest := f
				if path != "" {
					dest = filepath.Join(filepath.Dir(f), filepath.FromSlash(path))
				}
				where := fmt.Sprintf("%s:%d: link %s", rel, i+1, target)
				st, err := os.Stat(dest)
				if !assert.NoError(t, err, "%s: no such file", where) {
					continue
				}
				checked++
				if frag == "" || st.IsDir() || !strings.HasSuffix(dest, ".md") {
					continue
				}
				body, err := os.ReadFile(dest)
				require.NoError(t, err)
				assert.True(t, anchors(string(body))[frag], "%s: %s has no heading #%s", where, filepath.Base(dest), frag)
			}
		}
	}
	require.NotZero(t, checked, "the docs have relative links")
}

func TestAnchors(t *testing.T) {
	got := anchors("# Title\n## `migrate.Up`: flypg's own migrations\n## Limits (all `transport.Config` fields, with defaults)\n```\n# not a heading\n```\n## Title\n")
	for _, a := range []string{"title", "migrateup-flypgs-own-migrations", "limits-all-transportconfig-fields-with-defaults", "title-1"} {
		assert.True(t, got[a], a)
	}
	assert.False(t, got["not-a-heading"])
}
