package metrics_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Both lists write a family as name{label, …} followed by its type: the
// table of docs/metrics.md and the list of the package documentation.
var (
	mdRow   = regexp.MustCompile("(?m)^\\| `(flypg_[a-z0-9_]+)(?:\\{([a-z_, ]*)\\})?` \\| (counter|gauge) \\|")
	docItem = regexp.MustCompile(`(?m)^//   - (flypg_[a-z0-9_]+)(?:\{([a-z_, ]*)\})? (counter|gauge):`)
)

func documented(t *testing.T, text string, re *regexp.Regexp) map[string]family {
	t.Helper()
	out := map[string]family{}
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		f := family{typ: dto.MetricType(dto.MetricType_value[strings.ToUpper(m[3])])}
		if m[2] != "" {
			for _, l := range strings.Split(m[2], ",") {
				f.labels = append(f.labels, strings.TrimSpace(l))
			}
		}
		require.NotContains(t, out, m[1], "%s listed twice", m[1])
		out[m[1]] = f
	}
	return out
}

// TestDocumented: docs/metrics.md and the package documentation list
// exactly the families the collector exports (the schema the scrape tests
// check), with their types and labels.
func TestDocumented(t *testing.T) {
	md, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	pkg, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		got  map[string]family
	}{
		{"docs/metrics.md", documented(t, string(md), mdRow)},
		{"package doc", documented(t, string(pkg), docItem)},
	} {
		t.Run(c.name, func(t *testing.T) {
			for name, want := range schema {
				got, ok := c.got[name]
				if !assert.True(t, ok, "%s documents %s", c.name, name) {
					continue
				}
				assert.Equal(t, want.typ, got.typ, "%s type", name)
				assert.Equal(t, sorted(want.labels), sorted(got.labels), "%s labels", name)
			}
			for name := range c.got {
				assert.Contains(t, schema, name, "%s documents %s, which is not exported", c.name, name)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
