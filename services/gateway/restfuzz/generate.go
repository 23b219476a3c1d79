package restfuzz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hints give plausible values by parameter or property name (e.g. "orgId": {"acme"}), so that
// unmutated requests reach the services' logic instead of stopping at NotFound; MapKeys give the
// keys of map-typed properties (e.g. "usage": {"input_tokens"}).
type Hints struct {
	Values  map[string][]any
	MapKeys map[string][]string
}

// request is one request being built: the parts stay separate until it is written, so that each
// mutation changes one of them.
type request struct {
	op         Operation
	method     string
	pathValues map[string]string
	query      url.Values
	// rawQuery is appended to the encoded query as is.
	rawQuery string
	// tree is the JSON body before encoding; raw holds the bytes that replace a placeholder
	// string after encoding (what encoding/json cannot write: invalid UTF-8, NaN, deep nesting).
	tree    any
	hasBody bool
	raw     map[string]string
	body    []byte // when set, replaces the encoded tree
	// duplicateKey is written a second time at the start of the encoded object.
	duplicateKey string
	contentType  string
	mutations    []string
}

// placeholder is a string the encoder writes verbatim, swapped for raw[name] afterwards.
func (r *request) placeholder(raw string) string {
	if r.raw == nil {
		r.raw = map[string]string{}
	}
	name := fmt.Sprintf("@@raw%d@@", len(r.raw))
	r.raw[name] = raw
	return name
}

// encodeBody returns the body bytes (nil for none).
func (r *request) encodeBody() ([]byte, error) {
	if r.body != nil {
		return r.body, nil
	}
	if !r.hasBody {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.tree); err != nil {
		return nil, fmt.Errorf("encoding a body: %w", err)
	}
	out := bytes.TrimSpace(buf.Bytes())
	// In a stable order: a raw value may hold another's placeholder.
	for _, name := range slices.Sorted(maps.Keys(r.raw)) {
		out = bytes.ReplaceAll(out, []byte(`"`+name+`"`), []byte(r.raw[name]))
	}
	if r.duplicateKey != "" && len(out) > 2 && out[0] == '{' {
		key, err := json.Marshal(r.duplicateKey)
		if err != nil {
			return nil, fmt.Errorf("encoding a key: %w", err)
		}
		out = slices.Concat([]byte("{"), key, []byte(`:"first",`), out[1:])
	}
	return out, nil
}

// target returns the escaped path and query of r.
func (r *request) target() string {
	path := r.op.Path
	for _, name := range slices.Sorted(maps.Keys(r.pathValues)) {
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(r.pathValues[name]))
	}
	q := r.query.Encode()
	if r.rawQuery != "" {
		if q != "" {
			q += "&"
		}
		q += r.rawQuery
	}
	if q != "" {
		return path + "?" + q
	}
	return path
}

// generator builds plausible values from schemas.
type generator struct {
	spec  *Spec
	hints Hints
	rnd   *rand.Rand
	seq   uint64
	now   time.Time // the run's start, never the wall clock: requests are reproducible
}

func (g *generator) hint(name string) (any, bool) {
	vs := g.hints.Values[name]
	if len(vs) == 0 {
		return nil, false
	}
	return pick(g, vs), true
}

// unique returns a fresh idempotency-key-like string.
func (g *generator) unique() string {
	g.seq++
	return fmt.Sprintf("fuzz-%x-%d", g.rnd.Uint32(), g.seq)
}

// value builds a plausible value of sc for the property name.
func (g *generator) value(name string, sc *Schema, depth int) any {
	if v, ok := g.hint(name); ok {
		return v
	}
	if strings.Contains(strings.ToLower(name), "idempotencykey") {
		return g.unique()
	}
	sc = g.spec.resolve(sc)
	if sc == nil {
		return nil
	}
	if len(sc.Examples) > 0 {
		return pick(g, sc.Examples)
	}
	if len(sc.Enum) > 0 {
		return sc.Enum[g.rnd.IntN(len(sc.Enum))]
	}
	switch sc.Type {
	case "object", "":
		obj := map[string]any{}
		if depth > 6 {
			return obj
		}
		if sc.AdditionalProperties != nil && len(sc.Properties) == 0 {
			keys := g.hints.MapKeys[name]
			if len(keys) == 0 {
				keys = []string{"key"}
			}
			for range 1 + g.rnd.IntN(2) {
				k := keys[g.rnd.IntN(len(keys))]
				obj[k] = g.value(k, sc.AdditionalProperties, depth+1)
			}
			return obj
		}
		for _, k := range slices.Sorted(maps.Keys(sc.Properties)) {
			p := sc.Properties[k]
			if p.ReadOnly || g.rnd.IntN(10) == 0 {
				continue
			}
			obj[k] = g.value(k, p, depth+1)
		}
		return obj
	case "array":
		n := g.rnd.IntN(3)
		arr := make([]any, 0, n)
		for range n {
			arr = append(arr, g.value(name, sc.Items, depth+1))
		}
		return arr
	case "integer":
		return 1 + g.rnd.IntN(50)
	case "number":
		return float64(g.rnd.IntN(1000)) / 10
	case "boolean":
		return g.rnd.IntN(2) == 0
	case "string":
		switch sc.Format {
		case "int64", "uint64":
			return strconv.Itoa(1 + g.rnd.IntN(100))
		case "date-time":
			return g.now.Add(-time.Duration(g.rnd.IntN(3600)) * time.Second).Format(time.RFC3339)
		case "byte":
			return base64.StdEncoding.EncodeToString([]byte(g.unique()))
		}
		return g.unique()
	}
	return nil
}

// paramValue builds a plausible path or query value.
func (g *generator) paramValue(p Parameter) string {
	if v, ok := g.hint(p.Name); ok {
		return fmt.Sprint(v)
	}
	sc := g.spec.resolve(p.Schema)
	if sc == nil {
		return g.unique()
	}
	if len(sc.Enum) > 0 {
		return sc.Enum[g.rnd.IntN(len(sc.Enum))]
	}
	switch sc.Type {
	case "integer":
		return strconv.Itoa(1 + g.rnd.IntN(50))
	case "boolean":
		return strconv.FormatBool(g.rnd.IntN(2) == 0)
	}
	if sc.Format == "date-time" {
		return g.now.Format(time.RFC3339)
	}
	return g.unique()
}

// build returns an unmutated request for op.
func (g *generator) build(op Operation) *request {
	r := &request{op: op, method: op.Method, pathValues: map[string]string{}, query: url.Values{}, contentType: "application/json"}
	for _, p := range op.pathParams() {
		r.pathValues[p.Name] = g.paramValue(p)
	}
	for _, p := range op.query() {
		if p.Required || g.rnd.IntN(2) == 0 {
			r.query.Set(p.Name, g.paramValue(p))
		}
	}
	if op.Body != nil {
		r.hasBody = true
		r.tree = g.value("", op.Body, 0)
	}
	return r
}
