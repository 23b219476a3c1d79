// Package archtest checks the import rules of the service spine (docs/architecture.md, "How the rules
// are enforced") over the whole workspace, using `go list -json`.
//
// Every service has the same layers: a pure domain (internal/<domain>), use cases (internal/app), SQL
// (internal/store), proto mapping (internal/grpcapi), the composition root (internal/service) shared by
// cmd/<svc>/main.go and the exported harness services/<svc>/<svc>test. The rules R1–R8 below say which
// of those may import what. Violations that exist today are listed, one "Rn from -> to" line each, in
// testdata/known_<module>.txt; the test fails on a new violation and on a listed one that is gone, so
// the lists only shrink. Rewrite them with
//
//	go test ./pkg/archtest -run TestImportRules -update
package archtest

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Root is the import path prefix of every package of the project.
const Root = "github.com/tallyhq/tally/"

// Package is the part of `go list -json` the rules read.
type Package struct {
	ImportPath   string
	Name         string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// Violation is one import that breaks a rule.
type Violation struct {
	Rule string // "R1".."R8"
	From string // importing package, relative to Root
	To   string // imported package, relative to Root when it is ours
}

// String is the line written to the known-violation files.
func (v Violation) String() string { return v.Rule + " " + v.From + " -> " + v.To }

// Module is the known-violation file the violation belongs to: the importer's module ("pkg", "ledger", …).
func (v Violation) Module() string {
	if s, ok := serviceOf(v.From); ok {
		return s
	}
	return "pkg"
}

// domains are the pure packages, one per service.
var domains = map[string]bool{"ledger": true, "rental": true, "notify": true, "payment": true, "pricing": true}

// layer names the spine layer of a package relative to Root: "domain", "app", "store", "grpcapi",
// "service", "harness", "cmd:<name>", "client", or "" (another package).
func layer(rel string) string {
	s, ok := serviceOf(rel)
	if !ok {
		if isHarnessName(path.Base(rel)) {
			return "harness"
		}
		if rel == "pkg/ledgerclient" {
			return "client"
		}
		return ""
	}
	inside := strings.TrimPrefix(rel, "services/"+s+"/")
	parts := strings.Split(inside, "/")
	switch {
	case inside == "service" || inside == "internal/service":
		return "service"
	case len(parts) == 1 && isHarnessName(parts[0]):
		return "harness"
	case parts[0] == "cmd" && len(parts) >= 2:
		return "cmd:" + parts[1]
	case parts[0] != "internal" || len(parts) < 2:
		return ""
	case domains[parts[1]]:
		return "domain"
	case parts[1] == "app" || parts[1] == "store" || parts[1] == "grpcapi":
		return parts[1]
	case strings.HasSuffix(parts[1], "client"):
		return "client"
	}
	return ""
}

// domainRoot is services/<svc>/internal/<domain> for a domain package or one below it.
func domainRoot(rel string) string {
	parts := strings.SplitN(rel, "/", 5)
	if len(parts) < 4 {
		return rel
	}
	return strings.Join(parts[:4], "/")
}

func isHarnessName(base string) bool { return strings.HasSuffix(base, "test") || base == "testenv" }

// serviceOf returns the service directory of a path under services/.
func serviceOf(rel string) (string, bool) {
	rest, ok := strings.CutPrefix(rel, "services/")
	if !ok {
		return "", false
	}
	s, _, _ := strings.Cut(rest, "/")
	return s, true
}

func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

func hasPrefix(imp string, prefixes ...string) bool {
	for _, p := range prefixes {
		if imp == p || strings.HasPrefix(imp, p+"/") {
			return true
		}
	}
	return false
}

var (
	grpcPkgs  = []string{"google.golang.org/grpc"}
	pgxPkgs   = []string{"github.com/jackc/pgx"}
	redisPkgs = []string{"github.com/redis/go-redis"}
)

// Check applies R1–R8 to the packages and returns the violations, sorted and without duplicates.
//
// R1–R5, R7 and R8 read the package's own (non-test) imports; R6 also reads its tests' imports,
// because test code in another module must start a service through its harness too.
func Check(pkgs []Package) []Violation {
	seen := map[Violation]bool{}
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, Root)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			for _, v := range checkImport(rel, imp) {
				seen[v] = true
			}
		}
		for _, imp := range append(append([]string(nil), p.TestImports...), p.XTestImports...) {
			if v, bad := crossModule(rel, imp); bad {
				seen[v] = true
			}
		}
	}
	out := make([]Violation, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// checkImport applies the rules to one non-test import of the package rel.
func checkImport(rel, imp string) []Violation {
	to := strings.TrimPrefix(imp, Root)
	svc, inService := serviceOf(rel)
	own := func(sub string) bool { return inService && hasPrefix(to, "services/"+svc+"/"+sub) }
	toLayer := layer(to)
	var out []Violation
	add := func(rule string, bad bool) {
		if bad {
			out = append(out, Violation{Rule: rule, From: rel, To: to})
		}
	}
	switch from := layer(rel); from {
	case "domain":
		add("R1", hasPrefix(imp, grpcPkgs...) || hasPrefix(imp, pgxPkgs...) || hasPrefix(imp, redisPkgs...) ||
			imp == "net" || imp == "net/http" || imp == "os" || hasPrefix(imp, "github.com/prometheus") ||
			hasPrefix(to, "pkg/gen", "pkg/pg", "pkg/rpcclient", "pkg/ledgerclient") ||
			(own("internal") && !hasPrefix(to, domainRoot(rel))))
	case "store":
		add("R2", own("internal/app") || own("internal/grpcapi") || own("service") || own("internal/service") ||
			hasPrefix(imp, grpcPkgs...) || hasPrefix(to, "pkg/gen", "pkg/ledgerclient") || toLayer == "client")
	case "grpcapi":
		add("R3", own("internal/store") || hasPrefix(imp, pgxPkgs...) || hasPrefix(imp, redisPkgs...) ||
			hasPrefix(to, "pkg/pg", "pkg/ledgerclient") || toLayer == "client")
	case "app":
		add("R5", hasPrefix(imp, "google.golang.org/grpc/status", "google.golang.org/grpc/codes"))
	}
	from := layer(rel)
	// R4 is about a service's own layers; pkg/ is shared plumbing (pkg/server maps the ledger
	// client's sentinels in CommonErrors).
	add("R4", inService && (toLayer == "store" || toLayer == "client") && from != "app" && from != "service" &&
		from != "harness" && from != "client" && !hasPrefix(to, rel))
	if v, bad := crossModule(rel, imp); bad {
		out = append(out, v)
	}
	if inService && from == "cmd:"+svc {
		add("R7", !isStd(imp) && !own("internal/service") && !hasPrefix(to, "pkg/server", "pkg/config") &&
			(svc != "ledger" || !hasPrefix(imp, redisPkgs...)))
	}
	add("R8", imp == "testing" && from != "harness")
	return out
}

// crossModule is R6: a package imports another service's packages other than its harness.
func crossModule(rel, imp string) (Violation, bool) {
	to, ok := strings.CutPrefix(imp, Root)
	if !ok {
		return Violation{}, false
	}
	target, ok := serviceOf(to)
	if !ok {
		return Violation{}, false
	}
	if own, _ := serviceOf(rel); own == target {
		return Violation{}, false
	}
	if layer(to) == "harness" {
		return Violation{}, false
	}
	return Violation{Rule: "R6", From: rel, To: to}, true
}

// Diff compares found violations with the known lines of one module: added are new violations, stale are
// known lines no longer found.
func Diff(found []Violation, known []string) (added, stale []string) {
	have := map[string]bool{}
	for _, v := range found {
		have[v.String()] = true
	}
	want := map[string]bool{}
	for _, k := range known {
		want[k] = true
		if !have[k] {
			stale = append(stale, k)
		}
	}
	for _, v := range found {
		if !want[v.String()] {
			added = append(added, v.String())
		}
	}
	return added, stale
}

// ParseKnown reads a known-violation file: one violation a line, '#' starts a comment.
func ParseKnown(text string) ([]string, error) {
	var out []string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 4 || f[2] != "->" || !strings.HasPrefix(f[0], "R") {
			return nil, fmt.Errorf("line %d: want \"Rn from -> to\", got %q", i+1, line)
		}
		out = append(out, line)
	}
	return out, nil
}
