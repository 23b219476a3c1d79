package textcheck_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/textcheck"
)

func TestIdentifierAndFreeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		identOK   bool
		freeOK    bool
		wantInMsg string
	}{
		{"empty", "", true, true, ""},
		{"plain key", "call-42:rental_x@acme.test", true, true, ""},
		{"printable ASCII punctuation", "!#$%&'()*+,-./~{|}", true, true, ""},
		{"space", "a b", false, true, "spaces"},
		{"tab", "a\tb", false, true, "U+0009"},
		{"newline", "line1\nline2", false, true, "U+000A"},
		{"carriage return", "a\rb", false, false, "U+000D"},
		{"NUL", "a\x00b", false, false, "NUL"},
		{"escape", "a\x1b[31mred", false, false, "U+001B"},
		{"DEL", "a\x7f", false, false, "U+007F"},
		{"C1 control", "a\u0085b", false, false, "U+0085"},
		{"invalid UTF-8", "a\xffb", false, false, "not valid UTF-8"},
		{"truncated UTF-8", "a\xe2\x82", false, false, "not valid UTF-8"},
		{"encoded surrogate", "\xed\xa0\x80", false, false, "not valid UTF-8"},
		{"RLO override", "abc\u202Edef", false, false, "bidirectional control character (U+202E)"},
		{"LRE", "\u202A", false, false, "bidirectional"},
		{"PDF", "\u202C", false, false, "bidirectional"},
		{"LRI isolate", "\u2066x\u2069", false, false, "U+2066"},
		{"PDI", "\u2069", false, false, "bidirectional"},
		{"LRM", "\u200E", false, false, "U+200E"},
		{"RLM", "\u200F", false, false, "U+200F"},
		{"arabic letter mark", "\u061C", false, false, "bidirectional"},
		{"zero width space", "a\u200Bb", false, false, "format character (U+200B)"},
		{"byte order mark", "\uFEFFabc", false, false, "U+FEFF"},
		{"soft hyphen", "co\u00ADop", false, false, "U+00AD"},
		{"line separator", "a\u2028b", false, false, "U+2028"},
		{"paragraph separator", "a\u2029b", false, false, "U+2029"},
		{"noncharacter", "a\uFFFF", false, false, "noncharacter"},
		{"plane noncharacter", "a\U0001FFFE", false, false, "noncharacter"},
		{"accented letters", "Müller GmbH – Zürich", false, true, "printable ASCII"},
		{"CJK and emoji", "東京 🚀", false, true, "printable ASCII"},
		{"emoji ZWJ sequence", "👩\u200D💻", false, true, "printable ASCII"},
		{"ZWNJ in Persian", "می\u200Cخواهم", false, true, "printable ASCII"},
		{"no-break space", "a\u00A0b", false, true, "U+00A0"},
		{"replacement character as sent", "a\uFFFDb", false, true, "U+FFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check := func(err error, ok bool) {
				t.Helper()
				if ok {
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, textcheck.ErrInvalid)
				require.True(t, strings.HasPrefix(err.Error(), "the_field "), "the message names the field: %v", err)
				require.Contains(t, err.Error(), tt.wantInMsg)
				require.NotContains(t, err.Error(), tt.in, "the message does not echo the text")
			}
			check(textcheck.Identifier("the_field", tt.in, 100), tt.identOK)
			check(textcheck.FreeText("the_field", tt.in, 100), tt.freeOK)
			check(textcheck.Printable("the_field", tt.in), tt.freeOK)
		})
	}
}

func TestLengthLimits(t *testing.T) {
	t.Parallel()
	require.NoError(t, textcheck.Identifier("k", strings.Repeat("k", 8), 8))
	err := textcheck.Identifier("k", strings.Repeat("k", 9), 8)
	require.ErrorIs(t, err, textcheck.ErrInvalid)
	require.EqualError(t, err, "k is longer than 8 bytes")
	require.NoError(t, textcheck.FreeText("r", "ääää", 8))
	require.EqualError(t, textcheck.FreeText("r", "äääää", 8), "r is longer than 8 bytes")
}

func TestErrorsWrap(t *testing.T) {
	t.Parallel()
	domain := errors.New("invalid request")
	err := textcheck.Identifier("org_id", "a\x00", 10)
	wrapped := errors.Join(domain, err)
	require.ErrorIs(t, wrapped, textcheck.ErrInvalid)
	var te *textcheck.Error
	require.ErrorAs(t, wrapped, &te)
	require.Equal(t, "org_id", te.Field)
}

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", `""`},
		{"acme", `"acme"`},
		{strings.Repeat("a", 32), `"` + strings.Repeat("a", 32) + `"`},
		{strings.Repeat("a", 33), `"` + strings.Repeat("a", 32) + `"…`},
		// a 3-byte character straddling byte 32 is left out whole
		{strings.Repeat("a", 30) + "€€", `"` + strings.Repeat("a", 30) + `"…`},
		{"a\x00\xff", `"a\x00\xff"`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, textcheck.Quote(tt.in), "Quote(%q)", tt.in)
	}
}

func TestTruncateAndAbbreviate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		n         int
		truncated string
	}{
		{"short", "acme", 8, "acme"},
		{"exact", "acme", 4, "acme"},
		{"cut", "acme corp", 4, "acme"},
		{"zero", "acme", 0, ""},
		{"negative", "acme", -1, ""},
		{"a 3-byte character straddling the cut is left out whole", "ab€", 3, "ab"},
		{"a character ending at the cut is kept", "ab€c", 5, "ab€"},
		{"invalid UTF-8 is cut where it stands", "a\xff\xfe\xfdb", 3, "a\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := textcheck.Truncate(tt.in, tt.n)
			require.Equal(t, tt.truncated, got)
			want := tt.truncated
			if got != tt.in {
				want += "…"
			}
			require.Equal(t, want, textcheck.Abbreviate(tt.in, tt.n))
		})
	}
}

// FuzzText checks the rules against their definitions on arbitrary input.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "acme", "a b", "a\x00", "\xff", "\u202E", "Müller\n\tGmbH", "👩\u200D💻", "\uFEFF", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		identErr := textcheck.Identifier("f", s, 1<<20)
		freeErr := textcheck.Printable("f", s)
		if identErr == nil {
			for i := 0; i < len(s); i++ {
				if s[i] <= ' ' || s[i] >= 0x7f {
					t.Fatalf("identifier %q accepted with byte %#x", s, s[i])
				}
			}
			if freeErr != nil {
				t.Fatalf("identifier %q is not acceptable free text: %v", s, freeErr)
			}
		}
		if freeErr != nil {
			if !errors.Is(freeErr, textcheck.ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", freeErr)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 %q accepted", s)
		}
		for _, r := range s {
			bad := r == 0 || r == '\r' || textcheck.IsBidiControl(r) ||
				unicode.Is(unicode.Cc, r) && r != '\t' && r != '\n' ||
				unicode.Is(unicode.Cf, r) && r != 0x200C && r != 0x200D
			if bad {
				t.Fatalf("free text %q accepted with %U", s, r)
			}
		}
		if q := textcheck.Quote(s); len(q) > 4*textcheck.MaxEcho+8 {
			t.Fatalf("Quote echoes too much: %d bytes", len(q))
		}
		if c := textcheck.Truncate(s, 7); len(c) > 7 || !utf8.ValidString(c) || !strings.HasPrefix(s, c) {
			t.Fatalf("Truncate(%q, 7) = %q: not a valid prefix of at most 7 bytes", s, c)
		}
	})
}
