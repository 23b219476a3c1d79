package grpcapi

import (
	"log/slog"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Errors maps the notifications errors to gRPC statuses (before server.CommonErrors; anything
// else, such as a malformed ledger reply, is Internal, logged once and masked).
var Errors = server.ErrorTable{
	{Is: notify.ErrInvalid, Code: codes.InvalidArgument},
	{Is: ids.ErrInvalid, Code: codes.InvalidArgument},
	{Is: notify.ErrPermissionDenied, Code: codes.PermissionDenied},
	{Is: notify.ErrNotFound, Code: codes.NotFound},
	// The ledger's text (and address) stays in the log.
	{Is: notify.ErrUnavailable, Code: codes.Unavailable, Message: "the ledger is unavailable, retry later", Level: slog.LevelWarn},
}
