package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoBinaries reports that the PostgreSQL server binaries could not be found.
var ErrNoBinaries = errors.New("pgcluster: PostgreSQL server binaries (initdb, postgres) not found; " +
	"install them with `sudo apt-get install -y postgresql` (Debian/Ubuntu), " +
	"or fetch another version with `scripts/ensure-pg.sh 17` and set FLYPG_PG_BIN to the directory it prints")

// required are the programs a cluster needs; all must live in one directory
// so that they come from the same PostgreSQL version. pg_basebackup is used
// when it is there too (Debian's packages have it, the npm builds do not).
var required = []string{"initdb", "postgres"}

// FindBinDir returns the directory holding PostgreSQL's server binaries:
// $FLYPG_PG_BIN, else the directory of initdb on $PATH (symlinks resolved,
// so that Debian's wrapper links lead to the real bin directory), else the
// newest /usr/lib/postgresql/*/bin.
func FindBinDir() (string, error) {
	if dir := os.Getenv("FLYPG_PG_BIN"); dir != "" {
		if err := checkBinDir(dir); err != nil {
			return "", fmt.Errorf("FLYPG_PG_BIN=%s: %w", dir, err)
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, dir := range dirs {
		if checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func checkBinDir(dir string) error {
	for _, name := range required {
		if err := executable(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%w (%v)", ErrNoBinaries, err)
		}
	}
	return nil
}

func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

// pgMajor extracts the version from /usr/lib/postgresql/<major>/bin; it
// compares numerically so that 10 sorts above 9.
func pgMajor(dir string) float64 {
	v := filepath.Base(filepath.Dir(dir))
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return -1
	}
	return f
}
