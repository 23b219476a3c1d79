package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// routeTable knows the methods of every REST route, for the Allow header of a 405: the paths of
// the OpenAPI document (generated from the same google.api.http rules as the routes) and the
// hand-written ones. grpc-gateway's router does not expose its routes.
type routeTable struct {
	routes []route
}

type route struct {
	segments []string // "" matches any one segment (a path parameter)
	methods  []string
}

// newRouteTable reads the paths of an OpenAPI 3 document and adds extra (path → methods).
func newRouteTable(openAPI []byte, extra map[string][]string) (*routeTable, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		return nil, fmt.Errorf("reading the OpenAPI paths: %w", err)
	}
	t := &routeTable{}
	add := func(path string, methods []string) {
		var segs []string
		for _, s := range strings.Split(strings.Trim(path, "/"), "/") {
			if strings.HasPrefix(s, "{") {
				s = ""
			}
			segs = append(segs, s)
		}
		t.routes = append(t.routes, route{segments: segs, methods: methods})
	}
	for path, ops := range doc.Paths {
		var methods []string
		for m := range ops {
			switch m := strings.ToUpper(m); m {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
				methods = append(methods, m)
			}
		}
		add(path, methods)
	}
	for path, methods := range extra {
		add(path, methods)
	}
	return t, nil
}

// allow is the Allow header of path: its routes' methods, sorted; "" when no route has the path.
func (t *routeTable) allow(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var methods []string
	for _, r := range t.routes {
		if r.matches(segs) {
			methods = append(methods, r.methods...)
		}
	}
	slices.Sort(methods)
	return strings.Join(slices.Compact(methods), ", ")
}

func (r route) matches(segs []string) bool {
	if len(segs) != len(r.segments) {
		return false
	}
	for i, s := range r.segments {
		if segs[i] == "" || (s != "" && s != segs[i]) {
			return false
		}
	}
	return true
}
