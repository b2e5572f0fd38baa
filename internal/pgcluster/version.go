package pgcluster

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// MinMajor is the oldest PostgreSQL major version pgcluster supports: the
// non-exclusive backup functions it needs without pg_basebackup
// (pg_backup_start/pg_backup_stop) are named so from 15 on.
const MinMajor = 15

// ErrUnsupportedVersion reports binaries older than MinMajor, or ones whose
// version cannot be read.
var ErrUnsupportedVersion = errors.New("pgcluster: unsupported PostgreSQL version")

// Version is a PostgreSQL server version, e.g. {17, 10} for 17.10.
type Version struct {
	Major, Minor int
}

// String is "17.10".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Num is the version as PostgreSQL's server_version_num reports it (170010),
// for comparisons like Num() >= 160000.
func (v Version) Num() int { return v.Major*10000 + v.Minor }

// versionRE matches `postgres --version`: "postgres (PostgreSQL) 17.10",
// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", "… 18beta1".
var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

func parseVersion(out string) (Version, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("%w: cannot read a version from %q", ErrUnsupportedVersion, out)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		v.Minor, _ = strconv.Atoi(m[2])
	}
	if v.Major < MinMajor {
		return v, fmt.Errorf("%w: PostgreSQL %s; pgcluster needs %d or newer (scripts/ensure-pg.sh 17 fetches one)",
			ErrUnsupportedVersion, v, MinMajor)
	}
	return v, nil
}

// initdbArgs are initdb's options for version v: one locale and encoding on
// every version, 1 MB WAL segments (the tests write little; small segments
// keep the data directories small and quick to copy), no fsync.
func initdbArgs(v Version, dataDir string) []string {
	args := []string{"-D", dataDir, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync", "--wal-segsize=1"}
	if v.Major >= 18 {
		// 18 turned data checksums on by default. Off keeps every version
		// alike (15–17 have them off unless asked) and a little faster.
		args = append(args, "--no-data-checksums")
	}
	return args
}
