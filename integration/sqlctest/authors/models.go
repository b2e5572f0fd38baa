package authors

import (
	"database/sql"
	"time"
)

// Author is a row of authors.
type Author struct {
	ID        int64
	Name      string
	Bio       sql.NullString
	Tags      []string
	CreatedAt time.Time
}
