package wraptest_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log"
	"os"
	"sync/atomic"

	"github.com/XSAM/otelsql"
	"github.com/ngrok/sqlmw"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flypg/flypg"
)

// openOtel is the otelsql recipe for an app that starts its flypg node
// itself: otelsql wraps flypg's connector, so its spans time what the app
// waits for — a forwarded write's round trip and its replay included.
func openOtel(node *flypg.Node, tp trace.TracerProvider) *sql.DB {
	return otelsql.OpenDB(node.Connector(), otelsql.WithTracerProvider(tp))
}

// openOtelByName is the otelsql recipe on the driver name. Wrap "flypg",
// never "pgx": otelsql.Open("pgx", …) would bypass flypg altogether.
func openOtelByName(tp trace.TracerProvider) (*sql.DB, error) {
	return otelsql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"), otelsql.WithTracerProvider(tp))
}

// registerOtelDriver is the WrapDriver recipe, for code that needs a
// driver name of its own: register the wrapped flypg driver once, at
// start-up (sql.Register panics on a second registration of a name).
func registerOtelDriver(tp trace.TracerProvider) {
	sql.Register("flypg-otel", otelsql.WrapDriver(&flypg.Driver{}, otelsql.WithTracerProvider(tp)))
}

// counting is an sqlmw interceptor that counts the statements it sees.
type counting struct {
	sqlmw.NullInterceptor
	execs, queries atomic.Int64
}

func (c *counting) ConnExecContext(ctx context.Context, conn driver.ExecerContext, query string, args []driver.NamedValue) (driver.Result, error) {
	c.execs.Add(1)
	return conn.ExecContext(ctx, query, args)
}

func (c *counting) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	c.queries.Add(1)
	rows, err := conn.QueryContext(ctx, query, args)
	return ctx, rows, err
}

// registerSqlmwDriver is the sqlmw recipe on the driver name: wrap
// flypg's driver and register it once, at start-up.
func registerSqlmwDriver(intr sqlmw.Interceptor) {
	sql.Register("flypg-sqlmw", sqlmw.Driver(&flypg.Driver{}, intr))
}

// nodeDriver presents a node's connector as a driver, for wrappers such as
// sqlmw that take a driver.Driver rather than a connector.
type nodeDriver struct{ c driver.Connector }

func (d nodeDriver) Open(string) (driver.Conn, error) { return d.c.Connect(context.Background()) }

func (d nodeDriver) OpenConnector(string) (driver.Connector, error) { return d.c, nil }

// openSqlmw is the sqlmw recipe for an app that starts its flypg node
// itself.
func openSqlmw(node *flypg.Node, intr sqlmw.Interceptor) (*sql.DB, error) {
	c, err := sqlmw.Driver(nodeDriver{node.Connector()}, intr).(driver.DriverContext).OpenConnector("")
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// The wrapped drivers are registered once per process, at start-up.
var (
	spans       = tracetest.NewSpanRecorder()
	tracer      = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	interceptor = &counting{}
)

func init() {
	registerOtelDriver(tracer)
	registerSqlmwDriver(interceptor)
}

// Wrapping flypg's driver with sqlmw (registered at start-up by
// registerSqlmwDriver): the interceptor sees every statement, and flypg
// still routes each one.
func Example_sqlmw() {
	ctx := context.Background()
	db, err := sql.Open("flypg-sqlmw", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	execs, queries := interceptor.execs.Load(), interceptor.queries.Load()
	if _, err := db.ExecContext(ctx, "INSERT INTO events (kind) VALUES ($1)", "example"); err != nil {
		log.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE kind = $1", "example").Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n >= 1, interceptor.execs.Load()-execs, interceptor.queries.Load()-queries)
	// Output: true 1 1
}
