// Package doctest checks that the Go code in flypg's documentation compiles.
// It has no API: its test (go test ./internal/doctest) extracts every ```go
// block of README.md and docs/*.md and compiles each one, so that a renamed
// function or a changed signature breaks the build of the docs as it breaks
// the build of code.
//
// # What a block may be
//
// A block whose first line of code is a package clause is a complete file
// and is compiled as it is (only its package name is changed, so that a
// "package main" block is checked without being linked).
//
// Any other block is a fragment: the declarations it starts with (imports,
// types, funcs, consts — not vars, which stay statements and so see the
// names below) and those it ends with go to file scope, and the statements
// in between into the body of a function
//
//	func _(ctx context.Context, db *sql.DB, ...) error { { <statements> }; return nil }
//
// whose parameters are the names docs use without declaring them (see env
// in env_test.go: ctx, db, tx, node, cfg, err, w, r, req, resp, mux, reg,
// token, todo, createTodo, listTodos). A fragment's own declarations shadow
// them. Packages it uses but does not import are imported goimports-style,
// by name, from a fixed table (imports in env_test.go: the standard library
// packages docs use, flypg and its subpackages, pgx, lib/pq, Prometheus,
// GORM, sqlx, bun, otelsql, OpenTelemetry, chi, gin, echo, goose,
// golang-migrate); a name missing from the table fails as undefined.
//
// A line holding only "..." or "…" stands for elided code. Because a
// fragment is a fragment, its compile errors "declared and not used",
// "imported and not used", a wrong number of values in a return statement
// of the fragment itself (not of a function literal in it), and, in a
// fragment with elided code, "missing return" are not failures. Every other
// error is, reported at the Markdown file and line it comes from.
//
// A block marked ```go nocompile is skipped — for code that is partial on
// purpose (an outline with placeholders). The test compiles it anyway and
// fails if it compiles: then the marker is wrong. Blocks in other languages
// (sh, toml, sql, text) are not checked.
//
// TestLinks also checks every relative link of those files: the file it
// names exists, and a #fragment into a Markdown file names one of its
// headings (as GitHub makes their anchors).
//
// # How
//
// The blocks are compiled, one package each, with one go build in a
// temporary copy of the module testdata/docmod, which requires flypg and
// flypgotel from this repository (replace directives) and the libraries
// the docs show flypg with, at the versions its go.sum pins. So a block
// compiles as it would in a user's module: internal packages are out of
// reach, and no library needs to be a dependency of flypg itself.
package doctest
