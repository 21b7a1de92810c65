package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Nothing the plugin runs goes through a shell: no exec of sh, bash or
// busybox, and no "-c". (The plugin's rootfs carries no shell either; the
// integration suite checks that.)
func TestNothingRunsThroughAShell(t *testing.T) {
	shells := map[string]bool{"sh": true, "bash": true, "dash": true, "busybox": true, "/bin/sh": true, "/bin/bash": true, "-c": true}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (path == "integration-tests" || path == "bench" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir // test and measuring tools, not the plugin
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && shells[s] {
				t.Errorf("%s: the literal %q: nothing may run through a shell", fset.Position(lit.Pos()), s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
