package buntest_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/flypg/flypg"
)

// openBun is the recipe for an app that starts its flypg node itself: bun
// on the node's own database, with bun's PostgreSQL dialect (not its
// pgdriver, which would bypass flypg).
func openBun(node *flypg.Node) *bun.DB {
	return bun.NewDB(node.OpenDB(), pgdialect.New())
}

// Note is the Example's model.
type Note struct {
	bun.BaseModel `bun:"table:notes"`
	ID            int64 `bun:",pk,autoincrement"`
	Text          string
}

// Opening bun on the driver name: DATABASE_URL is the primary's URL, the
// same in every region.
func Example_driverName() {
	ctx := context.Background()
	sqldb, err := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	db := bun.NewDB(sqldb, pgdialect.New())
	defer db.Close()

	if _, err := db.NewCreateTable().Model((*Note)(nil)).IfNotExists().Exec(ctx); err != nil {
		log.Fatal(err)
	}
	// Forwarded to the primary; the id comes back once the local replica
	// replayed the insert.
	note := Note{Text: "hello from lax"}
	if _, err := db.NewInsert().Model(&note).Returning("id").Exec(ctx); err != nil {
		log.Fatal(err)
	}
	// On the local replica, and it sees the row.
	var got Note
	if err := db.NewSelect().Model(&got).Where("id = ?", note.ID).Scan(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Text)
	// Output: hello from lax
}
