package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Limits of a token accepted for verification.
const (
	// maxTokenBytes bounds the compact token; real tokens are well under 4 KiB.
	maxTokenBytes = 16 << 10
	// maxJSONDepth bounds the nesting of the header and claims objects.
	maxJSONDepth = 16
	// maxNumericDate is 9999-12-31T23:59:59Z: no later exp, iat or nbf means a time.
	maxNumericDate = 253402300799
	// shownNameBytes is the most of a caller-chosen claim name an error repeats.
	shownNameBytes = 32
)

// The claims tally reads. Their names are matched exactly: encoding/json would also take
// "Roles" or "ORG_ID" for them, and the last of duplicated members.
const (
	claimSubject   = "sub"
	claimOrgID     = "org_id"
	claimEmail     = "email"
	claimName      = "name"
	claimRoles     = "roles"
	claimExpires   = "exp"
	claimIssuedAt  = "iat"
	claimNotBefore = "nbf"
	claimIssuer    = "iss"
	claimAudience  = "aud"
	claimID        = "jti"
)

// exactClaim returns the tally claim whose folded name (see foldName) is folded, or "".
func exactClaim(folded string) string {
	for _, c := range [...]string{claimSubject, claimOrgID, claimEmail, claimName, claimRoles, claimExpires,
		claimIssuedAt, claimNotBefore, claimIssuer, claimAudience, claimID} {
		if foldName(c) == folded {
			return c
		}
	}
	return ""
}

// foldName folds a claim name the way lenient JSON decoders match field names: case, '_' and
// '-' ignored.
func foldName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		return r
	}, strings.ToLower(name))
}

// shortName returns a printable prefix of a caller-chosen name for an error message.
func shortName(name string) string {
	if len(name) <= shownNameBytes {
		return strconv.Quote(name)
	}
	cut := shownNameBytes
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return strconv.Quote(name[:cut]) + "…"
}

// decodeObject parses data as exactly one JSON object: valid UTF-8, no member name repeated in
// any object at any depth, nesting within maxJSONDepth and nothing after the object. Strings
// come back as string, numbers as json.Number, arrays as []any and objects as map[string]any.
func decodeObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("JSON is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("JSON is not an object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return obj, nil
}

// readValue reads the next JSON value of dec (see decodeObject).
func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxJSONDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	switch delim {
	case '{':
		obj := map[string]any{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("malformed JSON: %w", err)
			}
			name, _ := key.(string)
			if _, dup := obj[name]; dup {
				return nil, fmt.Errorf("member %s appears twice", shortName(name))
			}
			if obj[name], err = readValue(dec, depth+1); err != nil {
				return nil, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		return obj, nil
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := readValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		return arr, nil
	}
	return nil, fmt.Errorf("malformed JSON: unexpected %v", delim)
}

// segments splits a compact JWS into its three base64url segments.
func segments(raw string) ([]string, error) {
	if len(raw) > maxTokenBytes {
		return nil, fmt.Errorf("token is longer than %d bytes", maxTokenBytes)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("token is not three dot-separated segments")
	}
	return parts, nil
}

// decodeSegment decodes one unpadded base64url segment, refusing non-canonical encodings.
func decodeSegment(seg string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, errors.New("segment is not base64url")
	}
	return b, nil
}

// checkHeader parses the JOSE header of raw strictly: no repeated member, alg (and kid and typ
// when present) strings, and no crit extensions, which tally does not implement.
func checkHeader(raw string) error {
	parts, err := segments(raw)
	if err != nil {
		return err
	}
	b, err := decodeSegment(parts[0])
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	h, err := decodeObject(b)
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if _, ok := h["alg"].(string); !ok {
		return errors.New("header: alg is not a string")
	}
	for _, name := range []string{"kid", "typ"} {
		if v, ok := h[name]; ok {
			if _, isString := v.(string); !isString {
				return fmt.Errorf("header: %s is not a string", name)
			}
		}
	}
	if _, ok := h["crit"]; ok {
		return errors.New("header: crit extensions are not supported")
	}
	return nil
}

// tokenClaims are the claims of a token as tally reads them. UnmarshalJSON parses them strictly,
// so the JWT library's own decoding of the payload goes through it.
type tokenClaims struct {
	Subject   string
	Issuer    string
	Audience  jwt.ClaimStrings
	ID        string
	ExpiresAt *jwt.NumericDate
	IssuedAt  *jwt.NumericDate
	NotBefore *jwt.NumericDate
	OrgID     string
	Email     string
	Name      string
	Roles     []Role
}

var _ jwt.Claims = (*tokenClaims)(nil)

// UnmarshalJSON parses a claims object strictly: names are exact and unique (a name equal to a
// tally claim but for case, '_' or '-' makes the token invalid), exp, iat and nbf are numbers,
// roles is an array of known roles and the other tally claims are strings. Claims tally does
// not read are allowed, under the same JSON rules.
func (tc *tokenClaims) UnmarshalJSON(data []byte) error {
	obj, err := decodeObject(data)
	if err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	var out tokenClaims
	for name, v := range obj {
		var err error
		switch name {
		case claimSubject:
			out.Subject, err = claimString(name, v)
		case claimIssuer:
			out.Issuer, err = claimString(name, v)
		case claimID:
			out.ID, err = claimString(name, v)
		case claimOrgID:
			out.OrgID, err = claimString(name, v)
		case claimEmail:
			out.Email, err = claimString(name, v)
		case claimName:
			out.Name, err = claimString(name, v)
		case claimAudience:
			out.Audience, err = claimAudienceValue(v)
		case claimRoles:
			out.Roles, err = claimRolesValue(v)
		case claimExpires:
			out.ExpiresAt, err = claimDate(name, v)
		case claimIssuedAt:
			out.IssuedAt, err = claimDate(name, v)
		case claimNotBefore:
			out.NotBefore, err = claimDate(name, v)
		default:
			if exact := exactClaim(foldName(name)); exact != "" {
				err = fmt.Errorf("claim %s is not %q: claim names are case-sensitive", shortName(name), exact)
			}
		}
		if err != nil {
			return fmt.Errorf("claims: %w", err)
		}
	}
	*tc = out
	return nil
}

// claimString requires v to be a JSON string.
func claimString(name string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// claimAudienceValue reads aud: a string or an array of strings (RFC 7519 4.1.3).
func claimAudienceValue(v any) (jwt.ClaimStrings, error) {
	switch a := v.(type) {
	case string:
		return jwt.ClaimStrings{a}, nil
	case []any:
		out := make(jwt.ClaimStrings, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("aud is not a string or an array of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("aud is not a string or an array of strings")
}

// claimRolesValue reads roles: an array of known role names.
func claimRolesValue(v any) ([]Role, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, errors.New("roles is not an array")
	}
	roles := make([]Role, 0, len(a))
	for _, e := range a {
		s, ok := e.(string)
		if !ok {
			return nil, errors.New("roles holds a value that is not a string")
		}
		switch r := Role(s); r {
		case RoleMember, RoleAdmin, RoleService, RoleOps:
			roles = append(roles, r)
		default:
			return nil, fmt.Errorf("roles holds an unknown role %s", shortName(s))
		}
	}
	return roles, nil
}

// claimDate reads a NumericDate: a JSON number of seconds since the epoch, fractions allowed.
func claimDate(name string, v any) (*jwt.NumericDate, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return nil, fmt.Errorf("%s is not a time", name)
	}
	sec, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9))), nil
}

// unverifiedClaims parses the claims of raw strictly without checking its signature: for a
// service reading the expiry of its own token, never for admitting a caller.
func unverifiedClaims(raw string) (tokenClaims, error) {
	parts, err := segments(raw)
	if err != nil {
		return tokenClaims{}, err
	}
	if err := checkHeader(raw); err != nil {
		return tokenClaims{}, err
	}
	b, err := decodeSegment(parts[1])
	if err != nil {
		return tokenClaims{}, fmt.Errorf("claims: %w", err)
	}
	var tc tokenClaims
	if err := tc.UnmarshalJSON(b); err != nil {
		return tokenClaims{}, err
	}
	return tc, nil
}

// GetExpirationTime implements jwt.Claims.
func (tc *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return tc.ExpiresAt, nil }

// GetIssuedAt implements jwt.Claims.
func (tc *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return tc.IssuedAt, nil }

// GetNotBefore implements jwt.Claims.
func (tc *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return tc.NotBefore, nil }

// GetIssuer implements jwt.Claims.
func (tc *tokenClaims) GetIssuer() (string, error) { return tc.Issuer, nil }

// GetSubject implements jwt.Claims.
func (tc *tokenClaims) GetSubject() (string, error) { return tc.Subject, nil }

// GetAudience implements jwt.Claims.
func (tc *tokenClaims) GetAudience() (jwt.ClaimStrings, error) { return tc.Audience, nil }
