# The two commands the README promises: `make demo` and `make test`.
# Both install PostgreSQL first when it is missing (as root, with apt-get).

.PHONY: demo test bench postgres

demo: postgres
	go run ./cmd/flypg-lab demo

test: postgres
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go test -race ./...

bench: postgres
	go run ./cmd/flypg-lab bench

postgres:
	@scripts/ensure-postgres.sh
