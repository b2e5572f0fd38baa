//go:build tools

package flypg

import (
	_ "github.com/Shopify/toxiproxy/v2"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/lib/pq"
	_ "github.com/stretchr/testify/require"
	_ "github.com/vmihailenco/msgpack/v5"
	_ "go.uber.org/goleak"
)
