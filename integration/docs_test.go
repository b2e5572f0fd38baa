package integration_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecipesMatchDocs keeps docs/orm.md true: every Go snippet in it must
// be code of this module (its tests and Examples run it against real
// servers), line for line — indentation and blank lines aside.
func TestRecipesMatchDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/orm.md")
	require.NoError(t, err)
	var src strings.Builder
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		b, err := os.ReadFile(path)
		src.WriteString(normalize(string(b)))
		src.WriteString("\n")
		return err
	})
	require.NoError(t, err)
	code := src.String()

	snippets := regexp.MustCompile("(?s)```go[^\n]*\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	require.NotEmpty(t, snippets, "docs/orm.md has Go snippets")
	for _, m := range snippets {
		snippet := normalize(m[1])
		assert.True(t, strings.Contains(code, snippet), "this snippet of docs/orm.md is not in the integration module's code:\n%s", m[1])
	}
}

// normalize drops indentation, trailing space and blank lines.
func normalize(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
