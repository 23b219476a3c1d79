package gateway

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

func TestDocumentDisposition(t *testing.T) {
	t.Parallel()
	pdf := &httpbody.HttpBody{ContentType: "application/pdf", Data: []byte("%PDF-1.4")}
	tests := []struct {
		name   string
		number []string
		msg    proto.Message
		want   string
	}{
		{"invoice number", []string{"TLY-2026-000042"}, pdf, `attachment; filename="TLY-2026-000042.pdf"`},
		{"no number", nil, pdf, `attachment; filename="document.pdf"`},
		{"quote in the number", []string{`x".pdf"; evil`}, pdf, `attachment; filename="document.pdf"`},
		{"path in the number", []string{"../../etc/passwd"}, pdf, `attachment; filename="document.pdf"`},
		{"CRLF in the number", []string{"a\r\nSet-Cookie: x=1"}, pdf, `attachment; filename="document.pdf"`},
		{"two numbers", []string{"A-1", "A-2"}, pdf, `attachment; filename="document.pdf"`},
		{"not a PDF", []string{"A-1"}, &httpbody.HttpBody{ContentType: "text/plain"}, ""},
		{"a JSON answer", []string{"A-1"}, &ledgerv1.GetBalanceResponse{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := runtime.ServerMetadata{HeaderMD: metadata.MD{}}
			if tt.number != nil {
				md.HeaderMD[documentNumberHeader] = tt.number
			}
			ctx := runtime.NewServerMetadataContext(context.Background(), md)
			rec := httptest.NewRecorder()
			require.NoError(t, documentDisposition(ctx, rec, tt.msg))
			require.Equal(t, tt.want, rec.Header().Get("Content-Disposition"))
		})
	}
}
