package sqlxtest_test

import (
	"os"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/integration/internal/fixture"
)

var suite fixture.Suite

// flypgBindType is what sqlx knows of the name "flypg" before anything in
// this process told it: read at package initialisation, before any test or
// Example calls sqlx.BindDriver.
var flypgBindType = sqlx.BindType(flypg.DriverName)

func TestMain(m *testing.M) { os.Exit(suite.Run(m)) }
