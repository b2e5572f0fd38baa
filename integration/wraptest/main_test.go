package wraptest_test

import (
	"context"
	"os"
	"testing"

	"github.com/flypg/flypg/integration/internal/fixture"
)

var suite = fixture.Suite{Setup: func(ctx context.Context, r *fixture.Regions) error {
	return r.Exec(ctx, `CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL, at timestamptz NOT NULL DEFAULT now())`)
}}

func TestMain(m *testing.M) { os.Exit(suite.Run(m)) }
