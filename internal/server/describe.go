package server

import (
	"context"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

// describe serves MethodDescribe: on the remote transaction's connection
// when one is named (its temporary tables exist only there), else on a
// pooled one.
func (s *Server) describe(ctx context.Context, req *transport.Request, d *wire.Describe, w *reply) error {
	t, err := s.cfg.Databases.Serve(d.DB)
	if err != nil {
		return err
	}
	var desc *wire.Description
	if d.Tx != 0 {
		tx := s.lookup(txKey{conn: req.Conn.ID(), tx: d.Tx})
		if tx == nil {
			return w.send(&wire.Description{Err: &wire.Error{Kind: wire.ErrTxGone, Message: errTxGone.Error()}})
		}
		tx.mu.Lock()
		desc, err = s.cfg.Backend.Describe(ctx, tx.conn, d.Query)
		tx.mu.Unlock()
	} else {
		c, cerr := s.conn(ctx, t)
		if cerr != nil {
			return cerr
		}
		desc, err = s.cfg.Backend.Describe(ctx, c, d.Query)
		c.Close()
	}
	if err != nil {
		return w.send(&wire.Description{Err: s.wireError(err)})
	}
	return w.send(desc)
}
