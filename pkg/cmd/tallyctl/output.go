package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/money"
)

// table collects the rows of a table output; a cell is never empty ("-" stands for nothing).
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

func (t *table) add(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	t.rows = append(t.rows, cells)
}

// write prints the table aligned with tabwriter, the header in capitals.
func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(t.header, "\t")))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// emit prints msg as JSON (-o json) or as the tables build makes of it.
func (c *cli) emit(msg proto.Message, build func() []*table) error {
	if c.output == "json" {
		return writeJSON(c.out, msg)
	}
	for i, t := range build() {
		if i > 0 {
			fmt.Fprintln(c.out)
		}
		if err := t.write(c.out); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON prints msg as the REST API shows it (protojson: lowerCamel names, enums as strings).
func writeJSON(w io.Writer, msg proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding the reply: %w", err)
	}
	if _, err := fmt.Fprintln(w, string(b)); err != nil {
		return fmt.Errorf("writing the reply: %w", err)
	}
	return nil
}

// nextPage tells the reader (on stderr, so stdout stays the table) how to get the next page.
func (c *cli) nextPage(token string) {
	if token != "" && c.output == "table" {
		fmt.Fprintf(c.errOut, "more: add --page-token %s\n", token)
	}
}

// formatMoney shows an amount exactly, as the console does ("$1,234.50", "-$0.0000015"); a
// missing amount is empty.
func formatMoney(m *moneypb.Money) string {
	if m == nil {
		return ""
	}
	v, err := money.FromProto(m)
	if err != nil {
		return fmt.Sprintf("invalid amount (%d units, %d nanos %s)", m.GetUnits(), m.GetNanos(), m.GetCurrencyCode())
	}
	return money.Format(v)
}

// formatTime shows a time in UTC to the second (RFC 3339); an unset time is empty.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

func formatDuration(d *durationpb.Duration) string {
	if d == nil {
		return ""
	}
	return d.AsDuration().String()
}

// enumName shows an enum value without its type prefix, in lower case:
// TRANSACTION_KIND_CREDIT → "credit"; the unspecified value is empty.
func enumName(name, prefix string) string {
	v := strings.ToLower(strings.TrimPrefix(name, prefix))
	if v == "unspecified" {
		return ""
	}
	return v
}

// parseEnum reads an enum flag the way enumName writes it ("credit", or the full name).
func parseEnum(flag, value, prefix string, values map[string]int32) (int32, error) {
	if value == "" {
		return 0, nil
	}
	name := strings.ToUpper(strings.ReplaceAll(value, "-", "_"))
	if !strings.HasPrefix(name, prefix) {
		name = prefix + name
	}
	if n, ok := values[name]; ok && n != 0 {
		return n, nil
	}
	var want []string
	for k, n := range values {
		if n != 0 {
			want = append(want, enumName(k, prefix))
		}
	}
	slices.Sort(want)
	return 0, usagef("--%s %q: want one of %s", flag, value, strings.Join(want, ", "))
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

// parseAmount reads an exact decimal amount of a currency ("25", "-0.5"); currency may be empty
// (the organization's currency).
func parseAmount(flag, value, currency string) (*moneypb.Money, error) {
	if value == "" {
		return nil, usagef("--%s is required", flag)
	}
	n, err := money.ParseDecimal(value)
	if err != nil {
		return nil, usagef("--%s: %w", flag, err)
	}
	if currency != "" && !money.IsKnownCurrency(currency) {
		return nil, usagef("--currency %q: want an upper-case ISO 4217 code such as USD", currency)
	}
	return money.ToProto(n, currency), nil
}
