package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fake of VirtualBox's web service is for tests alone: no file that
// is built into a binary imports it, so the plugin can never talk to a fake
// where a user expects VirtualBox.
func TestFakesAreReachedOnlyByTests(t *testing.T) {
	const fake = "github.com/rexray/rexray/internal/vboxfake"
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir // not built
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil && p == fake {
				t.Errorf("%s imports %s: only _test.go files may", fset.Position(imp.Pos()), fake)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
