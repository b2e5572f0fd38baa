// Package walstream is a minimal client of PostgreSQL's physical streaming
// replication protocol, for learning *when* WAL reaches a server rather
// than for keeping it: it reads the stream and reports how far the server
// has WAL, discarding the WAL itself.
//
// On a hot standby the walsender that serves such a connection (a
// cascading walsender) is woken as soon as the standby's walreceiver has
// flushed new WAL, and each message it sends carries the standby's flush
// position. The message therefore arrives at about the moment the startup
// process can replay that WAL.
//
// In its status messages the client reports as written the WAL it has
// read, and flush and apply positions of zero. The write position matters:
// a walsender that is shutting down waits until its client has confirmed
// everything it sent, so without it a standby's fast shutdown would hang
// for wal_sender_timeout. The zero flush position keeps the connection from
// ever being counted as a synchronous standby, should the server be
// promoted with synchronous_standby_names = '*' (candidates must report a
// valid flush position).
package walstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ErrEndOfStream is returned by Next when the server ends the stream: the
// timeline being streamed became historic (the standby followed a
// promotion elsewhere, or was itself promoted). Connect again to stream
// the new timeline.
var ErrEndOfStream = errors.New("walstream: server ended the stream (timeline switch or promotion)")

// Message kinds of the replication sub-protocol (inside CopyData).
const (
	msgXLogData  = 'w'
	msgKeepalive = 'k'
	msgStatus    = 'r'
)

// Stream is one physical replication connection. It is not safe for
// concurrent use: one goroutine connects, reads and closes it.
type Stream struct {
	conn *pgconn.PgConn
	// SystemID and Timeline are what IDENTIFY_SYSTEM reported.
	SystemID string
	Timeline int32
	// Start is the server's flush position when the stream was opened: WAL
	// up to it had arrived before, and streaming begins there.
	Start uint64

	received uint64 // end of the WAL data read so far
}

// Event is one message of the stream.
type Event struct {
	// WALEnd is the server's WAL end (on a standby: its flush position)
	// when it sent the message.
	WALEnd uint64
	// At is when the message was read.
	At time.Time
	// ReplyRequested means the server asked for a status message; Next's
	// caller should call SendStatus.
	ReplyRequested bool
}

// Connect opens a replication connection with cfg (which it copies and
// marks replication=true), identifies the system and starts streaming its
// current timeline from its current flush position.
func Connect(ctx context.Context, cfg *pgconn.Config) (*Stream, error) {
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["replication"] = "true"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Stream{conn: conn}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stream) start(ctx context.Context) error {
	results, err := s.conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		return fmt.Errorf("walstream: IDENTIFY_SYSTEM: %w", err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) < 3 {
		return errors.New("walstream: IDENTIFY_SYSTEM: unexpected answer")
	}
	row := results[0].Rows[0]
	s.SystemID = string(row[0])
	tli, err := strconv.ParseInt(string(row[1]), 10, 32)
	if err != nil {
		return fmt.Errorf("walstream: IDENTIFY_SYSTEM: timeline %q: %w", row[1], err)
	}
	s.Timeline = int32(tli)
	if s.Start, err = ParseLSN(string(row[2])); err != nil {
		return fmt.Errorf("walstream: IDENTIFY_SYSTEM: %w", err)
	}
	s.received = s.Start

	sql := fmt.Sprintf("START_REPLICATION PHYSICAL %s TIMELINE %d", FormatLSN(s.Start), s.Timeline)
	s.conn.Frontend().Send(&pgproto3.Query{String: sql})
	if err := s.conn.Frontend().Flush(); err != nil {
		return fmt.Errorf("walstream: START_REPLICATION: %w", err)
	}
	for {
		msg, err := s.conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("walstream: START_REPLICATION: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return nil
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("walstream: START_REPLICATION: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return fmt.Errorf("walstream: START_REPLICATION: unexpected %T", msg)
		}
	}
}

// Next reads the next WAL or keepalive message. It returns ctx's error
// (pgconn.Timeout reports true for a deadline) with the stream still
// usable, ErrEndOfStream when the server ended the stream, or another error
// when the connection failed.
func (s *Stream) Next(ctx context.Context) (Event, error) {
	for {
		msg, err := s.conn.ReceiveMessage(ctx)
		if err != nil {
			return Event{}, err
		}
		at := time.Now()
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			ev, dataEnd, ok, err := parseCopyData(msg.Data)
			if err != nil {
				return Event{}, err
			}
			if ok {
				s.received = max(s.received, dataEnd)
				ev.At = at
				return ev, nil
			}
		case *pgproto3.CopyDone:
			return Event{}, ErrEndOfStream
		case *pgproto3.ErrorResponse:
			return Event{}, fmt.Errorf("walstream: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return Event{}, fmt.Errorf("walstream: unexpected %T while streaming", msg)
		}
	}
}

// parseCopyData decodes the replication message in one CopyData: the
// event, and for WAL data where that data ends. ok is false for message
// kinds the client ignores.
func parseCopyData(b []byte) (ev Event, dataEnd uint64, ok bool, err error) {
	if len(b) == 0 {
		return Event{}, 0, false, errors.New("walstream: empty CopyData message")
	}
	switch b[0] {
	case msgXLogData: // 'w', dataStart, walEnd, sendTime, data…
		if len(b) < 25 {
			return Event{}, 0, false, fmt.Errorf("walstream: XLogData message of %d bytes", len(b))
		}
		start, end := binary.BigEndian.Uint64(b[1:9]), binary.BigEndian.Uint64(b[9:17])
		dataEnd = start + uint64(len(b)-25)
		if dataEnd < start {
			return Event{}, 0, false, fmt.Errorf("walstream: XLogData at %s overflows", FormatLSN(start))
		}
		// walEnd is the sender's flush position; the data itself may end
		// further only if the two were read at different moments.
		return Event{WALEnd: max(end, dataEnd)}, dataEnd, true, nil
	case msgKeepalive: // 'k', walEnd, sendTime, replyRequested
		if len(b) < 18 {
			return Event{}, 0, false, fmt.Errorf("walstream: keepalive message of %d bytes", len(b))
		}
		return Event{WALEnd: binary.BigEndian.Uint64(b[1:9]), ReplyRequested: b[17] != 0}, 0, true, nil
	}
	return Event{}, 0, false, nil
}

// pgEpoch is PostgreSQL's timestamp epoch.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// SendStatus sends a standby status update: the WAL read so far as
// written, flush and apply zero (nothing is stored), the clock, and no
// reply requested. It keeps wal_sender_timeout from ending the connection
// and lets a walsender that is shutting down finish.
func (s *Stream) SendStatus() error {
	var b [34]byte
	b[0] = msgStatus
	binary.BigEndian.PutUint64(b[1:9], s.received)
	// flush and apply (bytes 9..24): zero
	binary.BigEndian.PutUint64(b[25:33], uint64(time.Since(pgEpoch).Microseconds()))
	msg, err := (&pgproto3.CopyData{Data: b[:]}).Encode(nil)
	if err != nil {
		return fmt.Errorf("walstream: status: %w", err)
	}
	if err := s.conn.Frontend().SendUnbufferedEncodedCopyData(msg); err != nil {
		return fmt.Errorf("walstream: status: %w", err)
	}
	return nil
}

// Close closes the connection.
func (s *Stream) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.conn.Close(ctx)
}

// ParseLSN reads PostgreSQL's "X/X" form. (Package lsn has the full type;
// this package sits below it.)
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("walstream: invalid LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("walstream: invalid LSN %q", s)
	}
	return h<<32 | l, nil
}

// FormatLSN prints an LSN as "X/X".
func FormatLSN(v uint64) string {
	return strconv.FormatUint(v>>32, 16) + "/" + strconv.FormatUint(v&0xFFFFFFFF, 16)
}
