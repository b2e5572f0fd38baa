package buntest_test

import (
	"os"
	"testing"

	"github.com/flypg/flypg/integration/internal/fixture"
)

var suite fixture.Suite

func TestMain(m *testing.M) { os.Exit(suite.Run(m)) }
