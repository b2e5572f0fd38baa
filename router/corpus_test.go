package router

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const corpusPath = "testdata/corpus.sql"

// record is one labelled statement of testdata/corpus.sql (its header
// explains the format).
type record struct {
	Line       int // of the record's first line, for messages
	Label      Class
	Standby    string // ok, refused, error or skip
	Autocommit bool
	Why        string
	SQL        string
}

func (r record) String() string { return fmt.Sprintf("%s:%d %q", corpusPath, r.Line, r.SQL) }

var labels = map[string]Class{
	"read": Read, "session": Session, "unsure": Unsure,
	"write": Write, "txcontrol": TxControl, "listen": Listen,
}

// defaultStandby is what a hot standby does with a statement of the class,
// unless the record says otherwise (with a reason).
func defaultStandby(c Class) string {
	switch c {
	case Read:
		return "ok"
	case Write:
		return "refused"
	}
	return "skip"
}

func loadCorpus(t testing.TB) []record {
	t.Helper()
	f, err := os.Open(corpusPath)
	require.NoError(t, err)
	defer f.Close()

	var (
		out  []record
		cur  *record
		sql  []string
		line int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line++
		text := sc.Text()
		if cur == nil {
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			require.Truef(t, strings.HasPrefix(text, "-- label: "), "%s:%d: a record must start with -- label:", corpusPath, line)
			cur = &record{Line: line}
		}
		if text == "----" {
			cur.SQL = strings.Join(sql, "\n")
			if cur.Standby == "" {
				cur.Standby = defaultStandby(cur.Label)
			}
			out = append(out, *cur)
			cur, sql = nil, nil
			continue
		}
		if key, val, ok := header(text); ok {
			switch key {
			case "label":
				c, ok := labels[val]
				require.Truef(t, ok, "%s:%d: unknown label %q", corpusPath, line, val)
				cur.Label = c
			case "standby":
				require.Containsf(t, []string{"ok", "refused", "error", "skip"}, val, "%s:%d", corpusPath, line)
				cur.Standby = val
			case "run":
				require.Equalf(t, "autocommit", val, "%s:%d", corpusPath, line)
				cur.Autocommit = true
			case "why":
				cur.Why = val
			}
			continue
		}
		sql = append(sql, text)
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "the last record is not closed with ----")
	return out
}

// header recognises a record's metadata lines, which may appear anywhere
// in the record; every other line is SQL.
func header(line string) (key, val string, ok bool) {
	for _, k := range []string{"label", "standby", "run", "why"} {
		if v, found := strings.CutPrefix(line, "-- "+k+": "); found {
			return k, strings.TrimSpace(v), true
		}
	}
	return "", "", false
}

func TestCorpusWellFormed(t *testing.T) {
	recs := loadCorpus(t)
	require.GreaterOrEqual(t, len(recs), 250)
	seen := map[string]int{}
	for _, r := range recs {
		if prev, dup := seen[r.SQL]; dup {
			t.Errorf("%s duplicates line %d", r, prev)
		}
		seen[r.SQL] = r.Line
		if r.Label == Unsure {
			assert.NotEqualf(t, "skip", r.Standby, "%s: an Unsure record must say what the standby does", r)
		}
		// Only a read the standby does not run, or a write it does not
		// refuse, is an exception to explain.
		if (r.Label == Read || r.Label == Write) && r.Standby != defaultStandby(r.Label) {
			assert.NotEmptyf(t, r.Why, "%s: standby %s differs from the default for %v: say why", r, r.Standby, r.Label)
		}
	}
}

func TestCorpus(t *testing.T) {
	for _, r := range loadCorpus(t) {
		got := Analyze(r.SQL)
		assert.Equalf(t, r.Label.String(), got.Class.String(), "%s", r)
	}
}
