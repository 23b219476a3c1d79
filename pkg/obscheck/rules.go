package obscheck

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// ruleFile is the part of a Prometheus rule file (rule_files:) that holds PromQL.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

type rule struct {
	Record string `yaml:"record"`
	Alert  string `yaml:"alert"`
	Expr   string `yaml:"expr"`
}

// errNoExpr is a rule without an expression (promtool check rules refuses it too).
var errNoExpr = errors.New("rule has no expr")

// parseRuleFile reads a YAML file; one without a top-level "groups" is not a rule file and has
// no groups.
func parseRuleFile(data []byte) (ruleFile, error) {
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return ruleFile{}, fmt.Errorf("yaml: %w", err)
	}
	if _, ok := top["groups"]; !ok {
		return ruleFile{}, nil
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		return ruleFile{}, fmt.Errorf("rule file: %w", err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Expr == "" {
				return ruleFile{}, fmt.Errorf("group %q, rule %q: %w", g.Name, r.Alert+r.Record, errNoExpr)
			}
		}
	}
	return rf, nil
}

func (rf ruleFile) exprs() []located {
	var out []located
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			out = append(out, located{where: fmt.Sprintf("group %q, rule %q", g.Name, name), expr: r.Expr})
		}
	}
	return out
}
