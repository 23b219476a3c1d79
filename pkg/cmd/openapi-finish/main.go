// Command openapi-finish completes the OpenAPI 3 document that gnostic's protoc-gen-openapi
// writes from the protos, and writes its JSON twin. `make gen` runs it right after `buf generate`:
//
//	openapi-finish -yaml pkg/gen/openapi/openapi.yaml -json pkg/gen/openapi/openapi.json
//
// It adds what the protos cannot say (finish.go): the local server, the bearerAuth security
// scheme applied to every operation, `security: []` on the public ones, summaries, the PDF media
// type of the invoice and credit-note routes, and the gateway's real error body. It reads and
// writes files only (offline), and the same input always gives the same bytes; running it on its
// own output changes nothing.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "openapi-finish:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("openapi-finish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		yamlPath = fs.String("yaml", "pkg/gen/openapi/openapi.yaml", "the document gnostic wrote; rewritten in place")
		jsonPath = fs.String("json", "pkg/gen/openapi/openapi.json", "where to write the same document as JSON")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	in, err := os.ReadFile(*yamlPath)
	if err != nil {
		return fmt.Errorf("reading the document: %w", err)
	}
	outYAML, outJSON, err := Finish(in, Tally)
	if err != nil {
		return fmt.Errorf("finishing %s: %w", *yamlPath, err)
	}
	if err := os.WriteFile(*yamlPath, outYAML, 0o644); err != nil {
		return fmt.Errorf("writing the YAML document: %w", err)
	}
	if err := os.WriteFile(*jsonPath, outJSON, 0o644); err != nil {
		return fmt.Errorf("writing the JSON document: %w", err)
	}
	return nil
}
