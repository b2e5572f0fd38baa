package gormtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/flypg/flypg"
)

// appMode makes the test binary, started again by TestAppFromEnvironment,
// be the app instead of running tests.
const appMode = "FLYPG_GORMTEST_APP"

// TestAppFromEnvironment runs an app the way it runs on Fly.io: its own
// process, configured only by environment, that never calls flypg.Start —
// GORM opens "flypg" on DATABASE_URL and the first connection starts the
// process's default node from the environment. In region lax, its Create
// is read back at once on the replica.
func TestAppFromEnvironment(t *testing.T) {
	r := suite.Regions(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), r.AppEnv("lax-app")...)
	cmd.Env = append(cmd.Env, appMode+"=1")
	out, err := cmd.Output()
	var stderr string
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "the app failed:\n%s", stderr)
	assert.Equal(t, "title=from the app in_recovery=true", strings.TrimSpace(string(out)))
}

// runApp is the app: what a user writes, nothing more.
func runApp() int {
	if err := app(); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		return 1
	}
	return 0
}

func app() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := gorm.Open(postgres.New(postgres.Config{
		DriverName: flypg.DriverName,
		DSN:        os.Getenv("DATABASE_URL"),
	}), &gorm.Config{SkipDefaultTransaction: true, TranslateError: true, Logger: logger.Discard})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	db = db.WithContext(ctx)
	if err := db.AutoMigrate(&Todo{}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	todo := Todo{Title: "from the app"}
	if err := db.Create(&todo).Error; err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var got Todo
	if err := db.First(&got, todo.ID).Error; err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	var inRecovery bool
	if err := db.Raw("SELECT pg_is_in_recovery()").Scan(&inRecovery).Error; err != nil {
		return err
	}
	fmt.Printf("title=%s in_recovery=%v\n", got.Title, inRecovery)
	return nil
}
