package flypghttp_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/flypghttp"
)

// TestStreamingHandler: a handler that writes to the database and then
// streams its answer — flushing the headers early by http.Flusher,
// http.ResponseController, io.Copy (io.ReaderFrom) or a write — gets the
// token in the headers the client receives before the body is done, over
// HTTP/1.1 and HTTP/2.
func TestStreamingHandler(t *testing.T) {
	r := startRegions(t, nil)
	db := r.lax.OpenDB()
	defer db.Close()
	flushes := map[string]func(w http.ResponseWriter) error{
		// The flush comes first: it alone sends the headers.
		"Flusher": func(w http.ResponseWriter) error {
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			return nil
		},
		"ResponseController": func(w http.ResponseWriter) error {
			rc := http.NewResponseController(w)
			if err := rc.Flush(); err != nil {
				return err
			}
			_, _ = io.WriteString(w, "first\n")
			return rc.Flush()
		},
		"ReaderFrom": func(w http.ResponseWriter) error {
			// A LimitedReader has no WriteTo: io.Copy takes w's ReadFrom.
			_, err := io.Copy(w, io.LimitReader(strings.NewReader("first\n"), 100))
			if err == nil {
				err = http.NewResponseController(w).Flush()
			}
			return err
		},
	}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		for name, flush := range flushes {
			t.Run(proto+"/"+name, func(t *testing.T) {
				proceed := make(chan struct{})
				h := flypghttp.Middleware(r.lax)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if _, err := addNote(r.Context(), db, "stream"); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					if err := flush(w); err != nil {
						t.Errorf("flush: %v", err)
						return
					}
					<-proceed // the client has the headers: they went out with the flush
					_, _ = io.WriteString(w, "second\n")
				}))
				s := httptest.NewUnstartedServer(h)
				if proto == "HTTP/2" {
					s.EnableHTTP2 = true
					s.StartTLS()
				} else {
					s.Start()
				}
				defer s.Close()
				defer func() {
					select {
					case <-proceed:
					default:
						close(proceed)
					}
				}()

				resp, err := s.Client().Get(s.URL)
				require.NoError(t, err)
				defer resp.Body.Close()
				assert.Equal(t, proto == "HTTP/2", resp.ProtoMajor == 2, resp.Proto)
				tok := tokenOf(t, resp)
				assert.NotEmpty(t, tok, "the token is in the early headers")
				rd := bufio.NewReader(resp.Body)
				line, err := rd.ReadString('\n')
				require.NoError(t, err)
				assert.Equal(t, "first\n", line, "the body streams")
				close(proceed)
				rest, err := io.ReadAll(rd)
				require.NoError(t, err)
				assert.Equal(t, "second\n", string(rest))
				_, err = r.ams.ParseToken(tok)
				assert.NoError(t, err)
			})
		}
	}
}
