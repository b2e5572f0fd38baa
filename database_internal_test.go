package flypg

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/flypg/flypg/internal/wire"
)

// Track, AfterLSN and tokens carry positions in the WAL of the node's own
// database's cluster: a database known to live in another cluster (another
// system identifier) is neither tracked nor made to wait for them.
func TestOtherCluster(t *testing.T) {
	n := &Node{}
	db := func(sysID uint64) *database {
		d := &database{n: n}
		d.ident.Store(&wire.DB{SysID: sysID, Name: "app"})
		return d
	}
	n.self = db(1)
	for _, tc := range []struct {
		name string
		db   *database
		want bool
	}{
		{"the node's own", n.self, false},
		{"another database of the same cluster", db(1), false},
		{"another cluster", db(2), true},
		{"not reached yet", db(0), false},
	} {
		assert.Equal(t, tc.want, tc.db.otherCluster(), tc.name)
	}
	n.self.ident.Store(&wire.DB{Name: "app"})
	assert.False(t, db(2).otherCluster(), "own cluster not known yet: not known to differ")
}
