package obscheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Dashboard is the part of a Grafana dashboard's JSON model that holds queries.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	SchemaVersion int        `json:"schemaVersion"`
	Panels        []Panel    `json:"panels"`
	Templating    Templating `json:"templating"`
}

// DatasourceVar is the data-source variable every tally dashboard queries through, so that it works
// whatever the Prometheus data source is called where it is imported.
const DatasourceVar = "DS_PROMETHEUS"

// Panel is one panel; a row panel holds its collapsed panels in Panels.
type Panel struct {
	ID         int        `json:"id"`
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Datasource Datasource `json:"datasource"`
	Targets    []Target   `json:"targets"`
	Panels     []Panel    `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string     `json:"refId"`
	Expr       string     `json:"expr"`
	Datasource Datasource `json:"datasource"`
}

// Datasource is a panel's or target's data source reference ({"type", "uid"}); the legacy form, a
// data source's name as a string, decodes into UID.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// UnmarshalJSON accepts both forms of a data source reference, and null.
func (d *Datasource) UnmarshalJSON(data []byte) error {
	var name string
	if err := json.Unmarshal(data, &name); err == nil {
		*d = Datasource{UID: name}
		return nil
	}
	type plain Datasource
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("datasource: %w", err)
	}
	*d = Datasource(p)
	return nil
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard variable; a query variable's Query is a string or {"query": "..."}.
type Variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// ParseDashboard decodes a dashboard's JSON; unknown fields are allowed (Grafana has many), JSON
// that is not one object, or trailing data, is not.
func ParseDashboard(data []byte) (Dashboard, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var d Dashboard
	if err := dec.Decode(&d); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard json: %w", err)
	}
	if dec.More() {
		return Dashboard{}, errors.New("dashboard json: data after the dashboard object")
	}
	return d, nil
}

// AllPanels returns every panel, those inside rows included, in order.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// exprs returns the PromQL of every panel target and of every query variable.
func (d Dashboard) exprs() []located {
	var out []located
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) == "" {
				continue
			}
			out = append(out, located{where: fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, t.RefID), expr: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if e, ok := variableExpr(v.Query); ok {
			out = append(out, located{where: fmt.Sprintf("variable %q", v.Name), expr: e})
		}
	}
	return out
}

// variableExpr returns the PromQL inside a query variable's query: the selector of
// label_values(selector, label), the expression of query_result(expr). label_values(label) and
// metrics(regex) select no metric by name.
func variableExpr(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var q string
	if err := json.Unmarshal(raw, &q); err != nil {
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", false
		}
		q = obj.Query
	}
	q = strings.TrimSpace(q)
	if inner, ok := call(q, "query_result"); ok {
		return inner, true
	}
	if inner, ok := call(q, "label_values"); ok {
		i := strings.LastIndexByte(inner, ',')
		if i < 0 {
			return "", false
		}
		return strings.TrimSpace(inner[:i]), true
	}
	return "", false
}

// call returns the argument text of fn(...) when q is exactly one call of fn.
func call(q, fn string) (string, bool) {
	rest, ok := strings.CutPrefix(q, fn)
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return "", false
	}
	return strings.TrimSpace(rest[1 : len(rest)-1]), true
}

// Validate checks a dashboard: a uid and title, a data-source variable DS_PROMETHEUS that every
// query uses (${DS_PROMETHEUS}), unique panel ids (rows included), and every query (panel targets
// and query variables) parses as PromQL and names its metrics.
func (d Dashboard) Validate() error {
	var errs []error
	if d.UID == "" || d.Title == "" {
		errs = append(errs, errors.New("dashboard needs a uid and a title"))
	}
	if !slices.ContainsFunc(d.Templating.List, func(v Variable) bool { return v.Name == DatasourceVar && v.Type == "datasource" }) {
		errs = append(errs, fmt.Errorf("dashboard has no data-source variable %s", DatasourceVar))
	}
	seen := map[int]string{}
	for _, p := range d.AllPanels() {
		if other, dup := seen[p.ID]; dup {
			errs = append(errs, fmt.Errorf("panel id %d used by %q and %q", p.ID, other, p.Title))
		}
		seen[p.ID] = p.Title
		errs = append(errs, p.check()...)
	}
	for _, e := range d.exprs() {
		if _, err := MetricNames(e.expr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.where, err))
		}
	}
	return errors.Join(errs...)
}

// check returns what is wrong with one panel: a query panel without a query, or one that does
// not query through ${DS_PROMETHEUS}.
func (p Panel) check() []error {
	if p.Type == "row" || p.Type == "text" {
		return nil
	}
	var errs []error
	if len(p.Targets) == 0 {
		errs = append(errs, fmt.Errorf("panel %d %q has no query", p.ID, p.Title))
	}
	want := "${" + DatasourceVar + "}"
	if p.Datasource.UID != want {
		errs = append(errs, fmt.Errorf("panel %d %q: datasource %q, want %q", p.ID, p.Title, p.Datasource.UID, want))
	}
	for _, t := range p.Targets {
		if t.Datasource.UID != "" && t.Datasource.UID != want {
			errs = append(errs, fmt.Errorf("panel %d %q target %s: datasource %q, want %q", p.ID, p.Title, t.RefID, t.Datasource.UID, want))
		}
	}
	return errs
}

// CheckDashboards parses and validates every *.json file under dir as a dashboard, and returns
// the paths (relative to dir) it checked; a directory without dashboards is an error.
func CheckDashboards(dir string) ([]string, error) {
	var checked []string
	var errs []error
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() || !strings.EqualFold(filepath.Ext(path), ".json") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(path) //nolint:gosec // paths come from walking the caller's directory
		if err != nil {
			return fmt.Errorf("obscheck: %w", err)
		}
		d, err := ParseDashboard(data)
		if err == nil {
			err = d.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rel, err))
		}
		checked = append(checked, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("obscheck: %w", err)
	}
	if len(checked) == 0 {
		return nil, fmt.Errorf("obscheck: no dashboards under %s", dir)
	}
	return checked, errors.Join(errs...)
}
