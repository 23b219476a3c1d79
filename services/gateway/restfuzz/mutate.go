package restfuzz

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Hostile values, grouped by what they attack. Each mutation names its group in reports
// ("body-string:bidi"), so a failure says what broke.
var (
	badStrings = map[string][]string{
		"nul":          {"\x00", "a\x00b", "acme\x00"},
		"invalid-utf8": {"\xff\xfe", "a\xc3\x28b", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80"},
		"bidi":         {"\u202eevil", "a\u2066b\u2069", "\u200fx", "\u202a\u202b\u202c\u202d"},
		"control":      {"\x01\x02", "\x1b[31mred", "\r\nX-Injected: 1", "\t", "\x7f"},
		"unicode":      {"😀", "ﬁ", "İstanbul", "\ufeffbom", "Ａｃｍｅ", "ß", "\u0301", "\uffff"},
		"empty":        {"", " ", "   "},
		"injection":    {"' OR 1=1 --", "${jndi:ldap://x/a}", "{{7*7}}", "<script>alert(1)</script>", "../../etc/passwd", "%00", "%ff", "a/b", "?x=1", "#frag"},
		"long":         {strings.Repeat("A", 5000), strings.Repeat("é", 3000)},
	}
	// badInt64Strings are int64 fields written as JSON strings, as protojson does.
	badInt64Strings = []string{
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "-1", "0",
		"1e3", "1.0", "1.5", "0x10", " 1", "+1", "-0", "99999999999999999999999", "NaN", "Infinity", "", "1_000",
		// Amounts that fit one request but not two: units whose nanos approach the int64 limit.
		"9223372036", "9223372035", "5000000000", "4611686018", "-9223372036",
	}
	// badNumbers are written verbatim as JSON numbers (or what looks like one).
	badNumbers = []string{
		"0", "-1", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807", "9223372036854775808",
		"-9223372036854775809", "1e400", "-1e400", "1.5", "1e3", "1E9", "0.000000001", "-0", "123456789012345678901234567890",
		"NaN", "Infinity", "-Infinity", "0x10", "01", "1.", ".5",
	}
	wrongTypes   = []any{"a string", 42, -7, true, false, nil, []any{}, []any{1, "a", nil}, map[string]any{}, map[string]any{"x": 1}}
	badDatetimes = []string{
		"not a time", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-13-40T25:61:61Z",
		"2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00:00+99:99", "-292277022657-01-27T08:29:52Z", "10000-01-01T00:00:00Z",
	}
	badQueryValues = []string{
		"abc", "-1", "0", "1e3", "1.5", "99999999999999999999", "-9223372036854775809", "2147483648", "true", "maybe",
		"\x00", "\xff", "\u202e", strings.Repeat("9", 2000), "", "%", "a&b=c", "[]", "{}",
	}
	contentTypes = []string{
		"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
		"application/json; charset=latin1", "", "application/grpc", "*/*",
	}
	notJSON = []string{
		"", "null", "[]", "123", `"str"`, "true", "{", `{"a":`, "}", "{}{}", `{"a":1}garbage`, "\x00\x01\x02", "\xff\xfe\xfd",
		"<xml/>", "a=1&b=2", `{'single':'quotes'}`, `{"a":1,}`, "\ufeff{}", `{"a":NaN}`, strings.Repeat(" ", 1000) + "{}",
	}
)

// mutator changes one part of a request.
type mutator struct {
	kind    string
	applies func(r *request) bool
	apply   func(g *generator, r *request) string // returns a detail for the report
}

func hasPath(r *request) bool  { return len(r.pathValues) > 0 }
func hasQuery(r *request) bool { return len(r.op.query()) > 0 }
func hasBody(r *request) bool  { return r.hasBody && r.body == nil }
func always(*request) bool     { return true }

func pickString(g *generator, group string) string { return pick(g, badStrings[group]) }

func pickGroup(g *generator) string { return pickKey(g, badStrings) }

// pickKey picks one of m's keys, from their sorted order so that a seed replays the same run.
func pickKey[V any](g *generator, m map[string]V) string { return pick(g, slices.Sorted(maps.Keys(m))) }

// pick picks one of vs with the run's random source.
func pick[T any](g *generator, vs []T) T { return vs[g.rnd.IntN(len(vs))] }

// mutators is every mutation the fuzzer knows.
var mutators = []mutator{
	{"path-string", hasPath, func(g *generator, r *request) string {
		group := pickGroup(g)
		r.pathValues[pickKey(g, r.pathValues)] = pickString(g, group)
		return group
	}},
	{"path-suffix", hasPath, func(g *generator, r *request) string {
		group := pickGroup(g)
		k := pickKey(g, r.pathValues)
		r.pathValues[k] += pickString(g, group)
		return group
	}},
	{"path-other-tenant", hasPath, func(g *generator, r *request) string {
		r.pathValues[pickKey(g, r.pathValues)] = pick(g, []string{"globex", "other", "me", "*", "acme "})
		return ""
	}},
	{"query-value", hasQuery, func(g *generator, r *request) string {
		p := pick(g, r.op.query())
		r.query.Set(p.Name, pick(g, badQueryValues))
		return p.Name
	}},
	{"query-repeated", hasQuery, func(g *generator, r *request) string {
		p := pick(g, r.op.query())
		r.query[p.Name] = []string{g.paramValue(p), g.paramValue(p)}
		return p.Name
	}},
	{"query-unknown", always, func(g *generator, r *request) string {
		group := pickGroup(g)
		r.query.Set(pick(g, []string{"bogus", "org_id", "orgId", "amount.units", "page_size", "__proto__", "a.b.c.d"}), pickString(g, group))
		return group
	}},
	{"query-raw", always, func(g *generator, r *request) string {
		r.rawQuery = pick(g, []string{"%", "%zz", "a=%ff", "=", "&&&", "a[]=1", "pageSize", "pageSize=1;pageSize=2", "x=%00"})
		return r.rawQuery
	}},
	{"wrong-method", always, func(g *generator, r *request) string {
		var candidates []string
		for _, m := range otherMethods {
			if !slices.Contains(g.spec.methodsOf(r.op.Path), m) {
				candidates = append(candidates, m)
			}
		}
		r.method = pick(g, candidates)
		return r.method
	}},
	{"content-type", always, func(g *generator, r *request) string {
		r.contentType = pick(g, contentTypes)
		return r.contentType
	}},
	{"body-not-json", always, func(g *generator, r *request) string {
		r.body = []byte(pick(g, notJSON))
		r.hasBody = true
		return ""
	}},
	{"body-string", hasBody, func(g *generator, r *request) string {
		group := pickGroup(g)
		s := pickString(g, group)
		if group == "invalid-utf8" {
			// encoding/json would replace the bytes with U+FFFD: write them raw.
			setRandom(g, r, r.placeholder(`"`+s+`"`), isString)
		} else {
			setRandom(g, r, s, isString)
		}
		return group
	}},
	{"body-wrong-type", hasBody, func(g *generator, r *request) string {
		setRandom(g, r, pick(g, wrongTypes), anyNode)
		return ""
	}},
	{"body-int64", hasBody, func(g *generator, r *request) string {
		v := pick(g, badInt64Strings)
		setRandom(g, r, v, isString)
		return v
	}},
	{"body-number", hasBody, func(g *generator, r *request) string {
		v := pick(g, badNumbers)
		setRandom(g, r, r.placeholder(v), anyNode)
		return v
	}},
	{"body-datetime", hasBody, func(g *generator, r *request) string {
		v := pick(g, badDatetimes)
		setRandom(g, r, v, isString)
		return v
	}},
	{"body-enum", hasBody, func(g *generator, r *request) string {
		v := pick(g, []any{"UNKNOWN_VALUE", 999, -1, "", "credit_source_grant", 1.5})
		setRandom(g, r, v, anyNode)
		return ""
	}},
	{"body-null", hasBody, func(g *generator, r *request) string {
		setRandom(g, r, nil, anyNode)
		return ""
	}},
	{"body-missing", hasBody, func(g *generator, r *request) string {
		deleteRandom(g, r)
		return ""
	}},
	{"body-extra-field", hasBody, func(g *generator, r *request) string {
		if obj, ok := r.tree.(map[string]any); ok {
			obj[pick(g, []string{"bogus", "org_id", "OrgId", "@type", "__proto__", "", "\u202e"})] = clone(pick(g, wrongTypes))
		}
		return ""
	}},
	{"body-duplicate-key", hasBody, func(g *generator, r *request) string {
		if obj, ok := r.tree.(map[string]any); ok && len(obj) > 0 {
			r.duplicateKey = pickKey(g, obj)
		}
		return ""
	}},
	{"body-deep", hasBody, func(g *generator, r *request) string {
		n := pick(g, []int{64, 1000, 10001, 100000})
		open, closing := "[", "]"
		if g.rnd.IntN(2) == 0 {
			open, closing = `{"a":`, "}"
		}
		setRandom(g, r, r.placeholder(strings.Repeat(open, n)+"1"+strings.Repeat(closing, n)), anyNode)
		return ""
	}},
	{"body-large", hasBody, func(g *generator, r *request) string {
		n := pick(g, []int{100 << 10, 900 << 10, 2 << 20})
		setRandom(g, r, strings.Repeat("x", n), isString)
		return ""
	}},
}

// node is a place in a JSON tree: the key of an object or the index of an array.
type node struct {
	obj map[string]any
	arr []any
	key string
	idx int
}

func (n node) get() any {
	if n.obj != nil {
		return n.obj[n.key]
	}
	return n.arr[n.idx]
}

func (n node) set(v any) {
	if n.obj != nil {
		n.obj[n.key] = v
		return
	}
	n.arr[n.idx] = v
}

func anyNode(any) bool { return true }

func isString(v any) bool { _, ok := v.(string); return ok }

// nodes lists every place in tree, depth first, in a stable order.
func nodes(tree any) []node {
	var out []node
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(t)) {
				out = append(out, node{obj: t, key: k})
				walk(t[k])
			}
		case []any:
			for i := range t {
				out = append(out, node{arr: t, idx: i})
				walk(t[i])
			}
		}
	}
	walk(tree)
	return out
}

// clone deep-copies the maps and slices of v: the hostile values are shared by every request.
func clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = clone(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = clone(e)
		}
		return out
	}
	return v
}

// setRandom sets a random place of the body accepting its current value (or the whole body when
// none does) to a copy of v.
func setRandom(g *generator, r *request, v any, accepts func(any) bool) {
	v = clone(v)
	var candidates []node
	for _, n := range nodes(r.tree) {
		if accepts(n.get()) {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		if obj, ok := r.tree.(map[string]any); ok {
			obj[pick(g, []string{"reason", "orgId", "modelId", "amount"})] = v
			return
		}
		r.tree = v
		return
	}
	pick(g, candidates).set(v)
}

// deleteRandom removes a random property of the body.
func deleteRandom(g *generator, r *request) {
	var objs []node
	for _, n := range nodes(r.tree) {
		if n.obj != nil {
			objs = append(objs, n)
		}
	}
	if len(objs) == 0 {
		r.tree = map[string]any{}
		return
	}
	n := pick(g, objs)
	delete(n.obj, n.key)
}

// mutate applies n mutations that fit r.
func (g *generator) mutate(r *request, n int) {
	for range n {
		var fitting []mutator
		for _, m := range mutators {
			if m.applies(r) {
				fitting = append(fitting, m)
			}
		}
		m := fitting[g.rnd.IntN(len(fitting))]
		kind := m.kind
		if detail := m.apply(g, r); detail != "" && len(detail) <= 24 && isPrintable(detail) {
			kind += ":" + detail
		}
		r.mutations = append(r.mutations, kind)
	}
}

func isPrintable(s string) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// newGenerator returns a generator for request i of a run with seed, whose times are around now
// (the run's start): the same seed, i and now build the same request.
func newGenerator(spec *Spec, hints Hints, seed uint64, i int, now time.Time) *generator {
	return &generator{spec: spec, hints: hints, rnd: rand.New(rand.NewPCG(seed, uint64(i))), now: now.UTC()}
}
