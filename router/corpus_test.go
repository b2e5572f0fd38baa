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
	Bound      string // Result.Bound.String() for a sessionbound record
	Standby    string // ok, refused, error or skip
	Holds      bool   // the standby session holds an advisory lock afterwards
	Opts       Options
	Autocommit bool
	Why        string
	SQL        string
}

func (r record) String() string {
	nonstd := ""
	if r.Opts.NonStandardStrings {
		nonstd = " (nonstandard strings)"
	}
	return fmt.Sprintf("%s:%d %q%s", corpusPath, r.Line, r.SQL, nonstd)
}

var labels = map[string]Class{
	"read": Read, "session": Session, "unsure": Unsure,
	"write": Write, "txcontrol": TxControl, "sessionbound": SessionBound,
}

var bounds = map[string]Bound{}

func init() {
	for b := BoundAdvisoryLock; b <= BoundListen; b++ {
		bounds[b.String()] = b
	}
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
			case "bound":
				_, ok := bounds[val]
				require.Truef(t, ok, "%s:%d: unknown bound %q", corpusPath, line, val)
				cur.Bound = val
			case "holds":
				require.Equalf(t, "advisory lock", val, "%s:%d", corpusPath, line)
				cur.Holds = true
			case "strings":
				require.Equalf(t, "nonstandard", val, "%s:%d", corpusPath, line)
				cur.Opts.NonStandardStrings = true
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
	for _, k := range []string{"label", "standby", "run", "why", "bound", "holds", "strings"} {
		if v, found := strings.CutPrefix(line, "-- "+k+": "); found {
			return k, strings.TrimSpace(v), true
		}
	}
	return "", "", false
}

func TestCorpusWellFormed(t *testing.T) {
	recs := loadCorpus(t)
	require.GreaterOrEqual(t, len(recs), 250)
	type key struct {
		sql  string
		opts Options
	}
	seen := map[key]int{}
	for _, r := range recs {
		k := key{r.SQL, r.Opts}
		if prev, dup := seen[k]; dup {
			t.Errorf("%s duplicates line %d", r, prev)
		}
		seen[k] = r.Line
		if r.Label == Unsure || r.Label == SessionBound {
			assert.NotEqualf(t, "skip", r.Standby, "%s: an %v record must say what the standby does", r, r.Label)
		}
		if r.Label == SessionBound {
			assert.NotEmptyf(t, r.Why, "%s: a SessionBound record must say why it is refused", r)
			assert.NotEmptyf(t, r.Bound, "%s: a SessionBound record must name its bound", r)
		} else {
			assert.Emptyf(t, r.Bound, "%s: only SessionBound records have a bound", r)
		}
		if r.Holds {
			assert.Equalf(t, "ok", r.Standby, "%s: a lock is only held after a statement the standby ran", r)
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
		got := AnalyzeOpts(r.SQL, r.Opts)
		assert.Equalf(t, r.Label.String(), got.Class.String(), "%s", r)
		want := NotBound
		if r.Bound != "" {
			want = bounds[r.Bound]
		}
		assert.Equalf(t, want.String(), got.Bound.String(), "%s: bound", r)
	}
}
