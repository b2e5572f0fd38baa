package migrate

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// FS holds the migration files under sql/, named NNNN_name.up.sql and
// NNNN_name.down.sql, in the layout golang-migrate expects.
//
//go:embed sql/*.sql
var FS embed.FS

// ErrStandby is returned when Up or Down is run against a database in
// recovery: migrations must run on the primary.
var ErrStandby = errors.New("migrate: database is a standby (in recovery); run migrations on the primary")

// lockKey is the transaction-level advisory lock that serialises concurrent
// migrations: CREATE OR REPLACE FUNCTION racing with itself fails with
// "tuple concurrently updated". The value spells "flypg" + 1 in ASCII.
const lockKey int64 = 0x666c797067_000001

// Up installs (or updates) every migration, in order. It is idempotent.
func Up(ctx context.Context, db *sql.DB) error {
	return apply(ctx, db, ".up.sql", false)
}

// Down removes what Up installed, newest first. It is idempotent.
func Down(ctx context.Context, db *sql.DB) error {
	return apply(ctx, db, ".down.sql", true)
}

func apply(ctx context.Context, db *sql.DB, suffix string, reverse bool) (err error) {
	names, err := fs.Glob(FS, "sql/*"+suffix)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	slices.Sort(names)
	if reverse {
		slices.Reverse(names)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// Checked first: on a standby the advisory lock and the DDL would fail
	// with less helpful errors.
	var inRecovery bool
	if err := tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if inRecovery {
		return ErrStandby
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
		return fmt.Errorf("migrate: advisory lock: %w", err)
	}
	for _, name := range names {
		body, err := FS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		// No arguments: drivers send the file with the simple query
		// protocol, which runs several statements at once.
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migrate: %s: %w", strings.TrimPrefix(name, "sql/"), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
