// Package faults holds flypg's fault suite: each test runs the read-your-
// writes checker (internal/checker) through one fault on real PostgreSQL
// servers (internal/pgcluster) and real nodes — some of them separate OS
// processes, so that a kill is a kill — and asserts what the app sees:
// only documented outcomes, within their deadlines, nothing acknowledged
// lost or applied twice, and recovery without a restart.
//
// The faults, one file each: the primary-region node SIGKILLed (kill),
// the WAN cut and healed (partition), replay paused (lag), the local
// replica stopped and restarted (replica), a promotion in another region
// (failover), a rolling restart of every node (rolling), a member wrongly
// declared dead while its link is healthy (gossip), and a load of many
// clients against the same load sent direct (load).
//
// By default each runs a short version; `go test ./internal/faults
// -faults.long` (or FLYPG_FAULTS_LONG=1) runs the long ones: longer loads,
// more clients, and the 1,000-client 60-second soak. docs/guarantees.md
// says what each fault proves.
package faults
