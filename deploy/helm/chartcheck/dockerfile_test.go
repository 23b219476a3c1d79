package chartcheck_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tallyhq/tally/deploy/helm/chartcheck"
)

// TestDockerfile checks the image's Dockerfile without an engine: a static Go build
// (CGO_ENABLED=0, -trimpath) of every service binary, a distroless/static nonroot (or scratch)
// final stage that gets only the binaries and the console, runs as UID 65532 and downloads
// nothing (no ADD of a URL, no curl/wget).
func TestDockerfile(t *testing.T) {
	repo, src := repoFile(t, "Dockerfile")
	stages, err := chartcheck.ParseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.Base, "gcr.io/distroless/static") && final.Base != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", final.Base)
	}
	if final.Base != "scratch" && !strings.HasSuffix(final.Base, ":nonroot") {
		t.Errorf("final stage FROM %s, want the :nonroot variant", final.Base)
	}
	if user := last(final, "USER"); user != "65532:65532" && user != "65532" && user != "nonroot:nonroot" {
		t.Errorf("final stage USER %q, want 65532 (nonroot)", user)
	}
	for _, in := range final.Instructions {
		if in.Cmd == "RUN" || in.Cmd == "ADD" {
			t.Errorf("line %d: %s in the final stage (it has no shell; copy from a build stage)", in.Line, in.Cmd)
		}
		if in.Cmd == "COPY" && !strings.HasPrefix(in.Args, "--from=") {
			t.Errorf("line %d: the final stage copies from the context, not from a build stage", in.Line)
		}
	}
	checkBuildStage(t, repo, stages)
	checkNoDownloads(t, stages)
	if !slices.ContainsFunc(final.Instructions, func(in chartcheck.Instruction) bool {
		return in.Cmd == "COPY" && strings.Contains(in.Args, "web/dist") && strings.Contains(in.Args, "/usr/share/tally/console")
	}) {
		t.Errorf("the final stage does not copy the console (web/dist) to /usr/share/tally/console (the chart's TALLY_CONSOLE_DIR)")
	}
}

func last(st chartcheck.Stage, cmd string) string {
	v := ""
	for _, in := range st.Instructions {
		if in.Cmd == cmd {
			v = in.Args
		}
	}
	return v
}

// checkBuildStage: one RUN builds every services/<svc>/cmd/<svc> statically and trimmed.
func checkBuildStage(t *testing.T, repo string, stages []chartcheck.Stage) {
	dirs, err := filepath.Glob(filepath.Join(repo, "services", "*", "cmd"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no services/*/cmd: %v", err)
	}
	var build string
	for _, st := range stages {
		env := strings.Join(instructionArgs(st, "ENV"), " ")
		for _, run := range instructionArgs(st, "RUN") {
			if strings.Contains(run, "go build") {
				build = env + " " + run
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build has no %s", want)
		}
	}
	for _, d := range dirs {
		svc := filepath.Base(filepath.Dir(d))
		if !strings.Contains(build, "./services/"+svc+"/cmd/"+svc) {
			t.Errorf("the go build does not build ./services/%s/cmd/%s", svc, svc)
		}
	}
}

func instructionArgs(st chartcheck.Stage, cmd string) []string {
	var out []string
	for _, in := range st.Instructions {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

var url = regexp.MustCompile(`https?://`)

func checkNoDownloads(t *testing.T, stages []chartcheck.Stage) {
	for _, st := range stages {
		for _, in := range st.Instructions {
			if in.Cmd == "ADD" && url.MatchString(in.Args) {
				t.Errorf("line %d: ADD of a URL", in.Line)
			}
			if in.Cmd == "RUN" && regexp.MustCompile(`\b(curl|wget)\b`).MatchString(in.Args) {
				t.Errorf("line %d: RUN downloads with curl/wget", in.Line)
			}
		}
	}
}

// TestDockerignoreKeepsTheWorkspace: every module go.work uses keeps its go.mod in the build
// context (the go build runs in workspace mode), and build output stays out.
func TestDockerignoreKeepsTheWorkspace(t *testing.T) {
	_, ignore := repoFile(t, ".dockerignore")
	_, work := repoFile(t, "go.work")
	uses := regexp.MustCompile(`(?m)^\s+\./(\S+)\s*$`).FindAllStringSubmatch(string(work), -1)
	if len(uses) == 0 {
		t.Fatal("no use lines in go.work")
	}
	for _, u := range uses {
		if chartcheck.Ignored(string(ignore), u[1]+"/go.mod") {
			t.Errorf(".dockerignore drops %s/go.mod, which go.work uses", u[1])
		}
	}
	for _, p := range []string{"bin/helm", ".data/pg", "web/node_modules/x", "web/dist/index.html"} {
		if !chartcheck.Ignored(string(ignore), p) {
			t.Errorf(".dockerignore keeps %s in the build context", p)
		}
	}
}

// repoFile returns the repository root and the content of one of its files.
func repoFile(t *testing.T, name string) (repo string, content []byte) {
	t.Helper()
	repo, err := chartcheck.Repo(".")
	if err != nil {
		t.Fatal(err)
	}
	content, err = os.ReadFile(filepath.Join(repo, name))
	if err != nil {
		t.Fatal(err)
	}
	return repo, content
}
