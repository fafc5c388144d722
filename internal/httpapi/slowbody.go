package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// Defaults of the request-body pace (Config.MinBodyRate, Config.BodyGrace).
//
// A tablet on a bad 2G link uploads at 1–5 KB/s, and a push of 16 MiB at
// 1 KB/s takes four and a half hours: a fixed deadline for the whole body
// would either cut such pushes or let a slow client hold a connection for
// hours. So the deadline moves with what arrived: byte n of a body is due
// BodyGrace + n/MinBodyRate after the body began. A client that keeps the
// average pace may go on as long as it needs; one that stalls is cut once its
// credit is spent. A client that holds connections open with a trickle must
// keep sending MinBodyRate on each, and FIELDSYNC_MAX_CONNECTIONS caps how
// many it can hold.
const (
	DefaultMinBodyRate = 512 // bytes per second, on average
	DefaultBodyGrace   = 30 * time.Second
)

// kindRequestTimeout is an HTTP-layer kind: the client did not send its body
// in time (408).
const kindRequestTimeout domain.Kind = 1001

// pacedBody holds a request body to the pace above by moving the connection's
// read deadline before each read.
type pacedBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	n     int64
}

// Read reads on, with the connection's read deadline at the time the next
// byte is due.
func (b *pacedBody) Read(p []byte) (int, error) {
	due := b.start.Add(b.grace + time.Duration(float64(b.n+1)/float64(b.rate)*float64(time.Second)))
	// A connection that cannot take deadlines (none in net/http's servers)
	// reads without one.
	_ = b.rc.SetReadDeadline(due)
	n, err := b.body.Read(p)
	b.n += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &domain.Error{Kind: kindRequestTimeout, Code: api.CodeBodyTooSlow, Title: "The request body arrived too slowly",
			Detail: fmt.Sprintf("after %d bytes in %s; the server waits for at least %d bytes per second on average (after %s): send the request again",
				b.n, time.Since(b.start).Round(time.Second), b.rate, b.grace),
			Err: err}
	default:
		err = &clientGoneError{err: err}
	}
	return n, err
}

// Close closes the body.
func (b *pacedBody) Close() error { return b.body.Close() }

// clientGoneError is a failure to read the request body other than a
// deadline: the connection broke or the client hung up mid-body (which a
// tablet on 2G does all the time). Nobody is left to read an answer, and it is
// no fault of the server: it is logged as such, not as an internal error.
type clientGoneError struct{ err error }

func (e *clientGoneError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientGoneError) Unwrap() error { return e.err }

func isClientGone(err error) bool {
	var e *clientGoneError
	return errors.As(err, &e)
}
