package gormtest_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/flypg/flypg/integration/internal/fixture"
)

var suite = fixture.Suite{LeakOptions: []goleak.Option{
	// PrepareStmt's statement cache starts a TTL sweeper that GORM never
	// stops ("done channel is never closed", gorm/internal/lru): GORM's
	// leak, one per PrepareStmt DB, not flypg's.
	goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"),
}}

func TestMain(m *testing.M) {
	if os.Getenv(appMode) != "" {
		os.Exit(runApp())
	}
	os.Exit(suite.Run(m))
}
