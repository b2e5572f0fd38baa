package sqlctest_test

import (
	"context"
	_ "embed"
	"os"
	"testing"

	"github.com/flypg/flypg/integration/internal/fixture"
)

//go:embed authors/schema.sql
var schema string

var suite = fixture.Suite{Setup: func(ctx context.Context, r *fixture.Regions) error {
	return r.Exec(ctx, schema)
}}

func TestMain(m *testing.M) { os.Exit(suite.Run(m)) }
