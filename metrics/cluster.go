package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flypg/flypg"
)

// defineCluster declares the membership metrics: who is there, how far, and
// who holds each database's primary.
func (c *collector) defineCluster(d descFunc) {
	c.members = d("cluster_members", "Live members of the cluster as this node sees them, itself included (0 in dev mode).")
	c.linkRTT = d("link_rtt_seconds", "Round-trip time to a peer, measured on the link to it (or by gossip probes before a link exists).",
		"peer", "peer_region")
	c.primaryMember = d("primary_member_info", "1 for each member (this node included) that advertises the primary of a database.",
		"database", "peer", "peer_region")
	c.dbPrimaryMembers = d("database_primary_members", "Members advertising the primary of one of this node's databases: 0 means writes fail with ErrNoPrimary, more than 1 a failover in progress (absent in dev mode).",
		"database")
}

// collectCluster emits the membership metrics; names are the database
// labels collectDatabases gave s.Databases.
func (c *collector) collectCluster(ch chan<- prometheus.Metric, s *flypg.Stats, names []string) {
	emit(ch, c.members, gauge, float64(len(s.Members)))
	if len(s.Members) == 0 {
		// Dev mode: there is no cluster, so no primary to count.
		return
	}
	holders := map[string]int{} // database name → members advertising its primary
	// Label values come from peers' metadata and are made valid UTF-8, so
	// two could end up equal; a repeated series would fail the scrape.
	seen := map[[3]string]bool{}
	once := func(k [3]string) bool {
		for i := range k {
			k[i] = validUTF8(k[i])
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	for _, m := range s.Members {
		if !m.Self && m.RTT > 0 && once([3]string{"rtt", m.Name, ""}) {
			emit(ch, c.linkRTT, gauge, m.RTT.Seconds(), m.Name, m.Region)
		}
		for _, db := range m.Primaries {
			if once([3]string{"primary", db, m.Name}) {
				holders[db]++
				emit(ch, c.primaryMember, gauge, 1, db, m.Name, m.Region)
			}
		}
	}
	for i, ds := range s.Databases {
		// Members name databases without their system identifier, so two
		// databases of one name share a count.
		emit(ch, c.dbPrimaryMembers, gauge, float64(holders[ds.Name]), names[i])
	}
}
