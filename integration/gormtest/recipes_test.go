package gormtest_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/flypg/flypg"
)

// openGORM is the recipe for an app that starts its flypg node itself —
// and for tests, which run several nodes in one process: GORM on the
// node's own database.
func openGORM(node *flypg.Node) (*gorm.DB, error) {
	return gorm.Open(postgres.New(postgres.Config{Conn: node.OpenDB()}), &gorm.Config{
		// GORM wraps every Create/Save/Update/Delete in BEGIN … COMMIT by
		// default: from a replica region that is two round trips to the
		// primary instead of one.
		SkipDefaultTransaction: true,
		// A unique violation on the primary comes back as
		// gorm.ErrDuplicatedKey (flypg returns pgx's own *pgconn.PgError).
		TranslateError: true,
	})
}

// Todo is the Examples' model.
type Todo struct {
	ID    uint
	Title string
	Done  bool
}

// Opening GORM on the driver name: DATABASE_URL is the primary's URL, the
// same in every region (Fly.io sets it). The connection goes through the
// process's default node — the first one started, or else one started from
// the environment (FLY_REGION, PRIMARY_REGION, FLYPG_SECRET, …) when GORM
// first connects.
func Example_driverName() {
	db, err := gorm.Open(postgres.New(postgres.Config{
		DriverName: flypg.DriverName,
		DSN:        os.Getenv("DATABASE_URL"),
	}), &gorm.Config{SkipDefaultTransaction: true, TranslateError: true})
	if err != nil {
		log.Fatal(err)
	}
	db.Logger = logger.Discard // only to keep this example's output exact
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()

	if err := db.AutoMigrate(&Todo{}); err != nil {
		log.Fatal(err)
	}
	// Forwarded to the primary; returns once the local replica replayed it.
	todo := Todo{Title: "buy milk"}
	if err := db.Create(&todo).Error; err != nil {
		log.Fatal(err)
	}
	// On the local replica, and it sees the row.
	var got Todo
	if err := db.First(&got, todo.ID).Error; err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Title)
	// Output: buy milk
}

// Opening GORM on a node the app started itself.
func Example_conn() {
	ctx := context.Background()
	cfg, err := flypg.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	node, err := flypg.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	db, err := gorm.Open(postgres.New(postgres.Config{Conn: node.OpenDB()}), &gorm.Config{
		SkipDefaultTransaction: true,
		TranslateError:         true,
	})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()
	_ = db // use db as usual
}
