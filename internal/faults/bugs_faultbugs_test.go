//go:build faultbugs

package faults

// strictBugs is true under -tags faultbugs: every known misbehaviour of the
// root package fails its test.
const strictBugs = true
