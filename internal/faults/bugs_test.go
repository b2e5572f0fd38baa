//go:build !faultbugs

package faults

// strictBugs is false in the default run: a known misbehaviour of the root
// package is logged ("KNOWN BUG …") so the suite stays green until the
// lead fixes it; `go test -tags faultbugs ./internal/faults` makes each one
// fail its test.
const strictBugs = false
