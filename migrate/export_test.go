package migrate_test

import (
	"io/fs"

	"github.com/flypg/flypg/migrate"
)

func migrateGlob(pattern string) ([]string, error) { return fs.Glob(migrate.FS, pattern) }
