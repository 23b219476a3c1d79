package pg

import (
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unreachable reports whether err is PostgreSQL being out of reach rather than a wrong query:
// no connection, a connection lost, the server shutting down or out of connections. A caller
// may be told to retry.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 53: insufficient resources; 57: operator intervention
		// (admin shutdown, crash shutdown, cannot connect now).
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "08", "53", "57":
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
