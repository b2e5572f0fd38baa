package flypg

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReplicaURL(t *testing.T) {
	cases := []struct {
		name, url, region, primary, want string
		wantErr                          bool
	}{
		{"dev", "postgres://u:p@db.internal:5432/app", "", "", "postgres://u:p@db.internal:5432/app", false},
		{"primary region", "postgres://u:p@db.internal:5432/app", "syd", "syd", "postgres://u:p@db.internal:5432/app", false},
		{"replica region", "postgres://u:p@db.internal:5432/app?sslmode=disable", "lax", "syd", "postgres://u:p@lax.db.internal:5433/app?sslmode=disable", false},
		{"no port", "postgresql://db.internal/app", "lax", "syd", "postgresql://lax.db.internal:5433/app", false},
		{"ip host", "postgres://[fdaa::3]:5432/app", "lax", "syd", "", true},
		{"not postgres", "mysql://db/app", "lax", "syd", "", true},
		{"no host", "postgres:///app", "lax", "syd", "", true},
		{"garbage", "::", "lax", "syd", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReplicaURL(tc.url, tc.region, tc.primary)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	for _, k := range []string{"FLY_REGION", "PRIMARY_REGION", "DATABASE_URL", "FLY_APP_NAME", "FLYPG_JOIN", "FLYPG_SECRET",
		"FLYPG_GOSSIP_ADDR", "FLYPG_RPC_ADDR", "FLYPG_ADVERTISE_RPC_ADDR", "FLYPG_NODE_NAME", "FLYPG_AWAIT_TIMEOUT", "FLYPG_RPC_TIMEOUT", "FLYPG_GOSSIP_PROFILE", "FLYPG_DSN"} {
		t.Setenv(k, "")
	}
	cfg, err := ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, "local", cfg.Region)
	assert.Equal(t, "local", cfg.PrimaryRegion)
	assert.Equal(t, roleDev, cfg.role())
	assert.Equal(t, 5*time.Second, cfg.AwaitTimeout)
	assert.Equal(t, 5*time.Second, cfg.RPCTimeout)
	assert.Equal(t, "wan", cfg.GossipProfile)
	assert.Empty(t, cfg.Join)

	t.Setenv("FLY_REGION", "lax")
	t.Setenv("PRIMARY_REGION", "syd")
	t.Setenv("DATABASE_URL", "postgres://u@db.internal:5432/app")
	t.Setenv("FLY_APP_NAME", "myapp")
	t.Setenv("FLYPG_SECRET", "s3cret")
	t.Setenv("FLYPG_AWAIT_TIMEOUT", "750ms")
	cfg, err = ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, roleReplica, cfg.role())
	assert.Equal(t, "postgres://u@lax.db.internal:5433/app", cfg.DSN)
	assert.Equal(t, []string{"myapp.internal"}, cfg.Join, "DNS join on Fly.io")
	assert.Equal(t, []byte("s3cret"), cfg.Secret)
	assert.Equal(t, 750*time.Millisecond, cfg.AwaitTimeout)

	t.Setenv("FLYPG_JOIN", "10.0.0.1:7946, 10.0.0.2:7946")
	t.Setenv("FLY_REGION", "syd")
	cfg, err = ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, rolePrimary, cfg.role())
	assert.Equal(t, "postgres://u@db.internal:5432/app", cfg.DSN, "the primary region uses DATABASE_URL as is")
	assert.Equal(t, []string{"10.0.0.1:7946", "10.0.0.2:7946"}, cfg.Join)

	t.Setenv("FLYPG_DSN", "postgres://u@10.1.2.3:5433/app")
	t.Setenv("FLY_REGION", "lax")
	cfg, err = ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@10.1.2.3:5433/app", cfg.DSN, "FLYPG_DSN wins over the derived replica URL")
	t.Setenv("FLYPG_DSN", "")

	t.Setenv("FLYPG_RPC_TIMEOUT", "soon")
	_, err = ConfigFromEnv()
	assert.ErrorContains(t, err, "FLYPG_RPC_TIMEOUT")
}

func TestSplitJoin(t *testing.T) {
	peers, dns := splitJoin([]string{"127.0.0.1:7946", "myapp.internal", "[fdaa::1]:7946"})
	assert.Equal(t, []string{"127.0.0.1:7946", "[fdaa::1]:7946"}, peers)
	assert.Equal(t, "myapp.internal", dns)
}
