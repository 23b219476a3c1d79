package chartcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strings"
)

// Instruction is one Dockerfile instruction with its continuation lines joined.
type Instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, COPY, …
	Args string
}

// Stage is one build stage: its FROM and the instructions after it.
type Stage struct {
	Base, Name   string
	Instructions []Instruction
}

// ParseDockerfile splits a Dockerfile into stages (the checks need no more than its structure:
// there is no Docker engine here to build it). Comments and parser directives are dropped.
func ParseDockerfile(src []byte) ([]Stage, error) {
	var stages []Stage
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasPrefix(line, "#") {
			continue // a comment inside a continued instruction
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		in := Instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		cur.Reset()
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := Stage{Base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
			continue
		}
		stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends inside a continued instruction", start)
	}
	return stages, sc.Err()
}

// Ignored reports whether a .dockerignore keeps path out of the build context. It follows the
// rules the file uses: patterns relative to the root, a trailing / or a directory prefix matching
// everything below, **/ for any depth, ! re-including, the last match winning.
func Ignored(dockerignore, name string) bool {
	ignored := false
	for _, line := range strings.Split(dockerignore, "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimSuffix(strings.TrimPrefix(p, "!"), "/")
		if matchIgnore(p, name) {
			ignored = !neg
		}
	}
	return ignored
}

func matchIgnore(pattern, name string) bool {
	if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
		parts := strings.Split(name, "/")
		for i := range parts {
			if matchIgnore(rest, strings.Join(parts[i:], "/")) {
				return true
			}
		}
		return false
	}
	parts := strings.Split(name, "/")
	for i := 1; i <= len(parts); i++ {
		if ok, _ := path.Match(pattern, strings.Join(parts[:i], "/")); ok {
			return true
		}
	}
	return false
}
