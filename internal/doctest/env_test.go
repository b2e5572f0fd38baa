package doctest

// imports resolves the package names a fragment uses without importing
// them: name → import path. A name that is not the package's own (an alias)
// is imported under that name. testdata/docmod/imports.go imports every
// path here, so that go mod tidy keeps them in the module's go.sum
// (TestImportTable checks that the two agree).
var imports = map[string]string{
	// Standard library.
	"bytes":    "bytes",
	"context":  "context",
	"rand":     "crypto/rand",
	"sql":      "database/sql",
	"driver":   "database/sql/driver",
	"embed":    "embed",
	"base64":   "encoding/base64",
	"json":     "encoding/json",
	"errors":   "errors",
	"fmt":      "fmt",
	"io":       "io",
	"fs":       "io/fs",
	"log":      "log",
	"slog":     "log/slog",
	"net":      "net",
	"http":     "net/http",
	"httptest": "net/http/httptest",
	"url":      "net/url",
	"os":       "os",
	"signal":   "os/signal",
	"filepath": "path/filepath",
	"strconv":  "strconv",
	"strings":  "strings",
	"sync":     "sync",
	"atomic":   "sync/atomic",
	"syscall":  "syscall",
	"testing":  "testing",
	"time":     "time",

	// flypg.
	"flypg":     "github.com/flypg/flypg",
	"flypghttp": "github.com/flypg/flypg/flypghttp",
	"flypgotel": "github.com/flypg/flypg/flypgotel",
	"lsn":       "github.com/flypg/flypg/lsn",
	"wakebench": "github.com/flypg/flypg/lsn/wakebench",
	"metrics":   "github.com/flypg/flypg/metrics",
	"migrate":   "github.com/flypg/flypg/migrate",
	"router":    "github.com/flypg/flypg/router",
	"transport": "github.com/flypg/flypg/transport",

	// Drivers.
	"pgx":     "github.com/jackc/pgx/v5",
	"pgconn":  "github.com/jackc/pgx/v5/pgconn",
	"pgtype":  "github.com/jackc/pgx/v5/pgtype",
	"pgxpool": "github.com/jackc/pgx/v5/pgxpool",
	"stdlib":  "github.com/jackc/pgx/v5/stdlib",
	"pq":      "github.com/lib/pq",

	// Metrics and tracing.
	"prometheus": "github.com/prometheus/client_golang/prometheus",
	"promhttp":   "github.com/prometheus/client_golang/prometheus/promhttp",
	"otel":       "go.opentelemetry.io/otel",
	"trace":      "go.opentelemetry.io/otel/trace",
	"sdktrace":   "go.opentelemetry.io/otel/sdk/trace",
	"otelsql":    "github.com/XSAM/otelsql",
	"sqlmw":      "github.com/ngrok/sqlmw",

	// ORMs, query builders, migration tools.
	"gorm":      "gorm.io/gorm",
	"postgres":  "gorm.io/driver/postgres",
	"clause":    "gorm.io/gorm/clause",
	"sqlx":      "github.com/jmoiron/sqlx",
	"bun":       "github.com/uptrace/bun",
	"pgdialect": "github.com/uptrace/bun/dialect/pgdialect",
	"goose":     "github.com/pressly/goose/v3",
	"gomigrate": "github.com/golang-migrate/migrate/v4",
	"iofs":      "github.com/golang-migrate/migrate/v4/source/iofs",

	// Web frameworks.
	"chi":        "github.com/go-chi/chi/v5",
	"middleware": "github.com/go-chi/chi/v5/middleware",
	"gin":        "github.com/gin-gonic/gin",
	"echo":       "github.com/labstack/echo/v4",
}

// blankImports are imported by testdata/docmod/imports.go only for their
// side effects (drivers that register themselves), which fragments import
// explicitly.
var blankImports = []string{
	"github.com/golang-migrate/migrate/v4/database/pgx/v5",
	"github.com/golang-migrate/migrate/v4/source/file",
}

// envParam is a name fragments may use without declaring it: a parameter of
// the function a fragment's statements are compiled in.
type envParam struct {
	name, typ string
}

// env lists them. Types refer to packages by the aliases in envImports.
var env = []envParam{
	{"ctx", "dtcontext.Context"},
	{"db", "*dtsql.DB"},
	{"tx", "*dtsql.Tx"},
	{"node", "*dtflypg.Node"},
	{"cfg", "dtflypg.Config"},
	{"err", "error"},
	{"w", "dthttp.ResponseWriter"},
	{"r", "*dthttp.Request"},
	{"req", "*dthttp.Request"},
	{"resp", "*dthttp.Response"},
	{"mux", "*dthttp.ServeMux"},
	{"createTodo", "dthttp.HandlerFunc"},
	{"listTodos", "dthttp.HandlerFunc"},
	{"reg", "*dtprometheus.Registry"},
	{"token", "string"},
	{"todo", "any"},
}

// envImports are the packages env's types come from, under aliases no
// fragment uses.
var envImports = map[string]string{
	"dtcontext":    "context",
	"dtsql":        "database/sql",
	"dthttp":       "net/http",
	"dtflypg":      "github.com/flypg/flypg",
	"dtprometheus": "github.com/prometheus/client_golang/prometheus",
}
