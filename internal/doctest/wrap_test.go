package doctest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path"
	"regexp"
	"slices"
	"strings"
)

// unit is a block made into one Go file of its own package.
type unit struct {
	b   block
	pkg string // the package's name and directory
	src string // the file; positions in it map back to b with //line

	fragment bool
	elided   bool            // it has a line standing for elided code
	returns  map[string]bool // "file:line" of the fragment's own return statements
	err      error           // it could not be made into a file: it does not parse
}

// isElision reports a line that stands for elided code.
func isElision(line string) bool {
	t := strings.TrimSpace(line)
	return t == "..." || t == "…"
}

// makeUnit turns a block into a file of package pkg (see the package
// documentation for the rules).
func makeUnit(b block, pkg string) unit {
	u := unit{b: b, pkg: pkg}
	lines := slices.Clone(b.code)
	for i, l := range lines {
		if isElision(l) {
			lines[i], u.elided = "", true
		}
	}
	if first := firstCode(lines); first >= 0 && strings.HasPrefix(lines[first], "package ") {
		lines[first] = "package " + pkg
		u.src = lineDirective(b, 0) + strings.Join(lines, "\n") + "\n"
		return u
	}
	u.fragment = true
	k, j, err := split(lines)
	if err != nil {
		u.err = fmt.Errorf("%s:%d: neither a Go file nor a fragment (declarations, then statements, then declarations): %w", b.file, b.line, err)
		return u
	}
	var f strings.Builder
	fmt.Fprintf(&f, "package %s\n\n", pkg)
	body := func(f *strings.Builder) {
		fmt.Fprintf(f, "%s%s\n", lineDirective(b, 0), strings.Join(lines[:k], "\n"))
		fmt.Fprintf(f, "func _(%s) error {\n{\n", envParams())
		fmt.Fprintf(f, "%s%s\n}\nreturn nil\n}\n", lineDirective(b, k), strings.Join(lines[k:j], "\n"))
		fmt.Fprintf(f, "%s%s\n", lineDirective(b, j), strings.Join(lines[j:], "\n"))
	}
	// Parse it once without the imports to learn what it uses and declares.
	var probe strings.Builder
	probe.WriteString("package p\n")
	body(&probe)
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "probe.go", probe.String(), parser.ParseComments)
	if err != nil {
		u.err = fmt.Errorf("%s:%d: %w", b.file, b.line, err)
		return u
	}
	f.WriteString("import (\n")
	for _, alias := range sortedKeys(envImports) {
		fmt.Fprintf(&f, "\t%s %q\n", alias, envImports[alias])
	}
	for _, name := range missingImports(file) {
		fmt.Fprintf(&f, "\t%s %q\n", name, imports[name])
	}
	f.WriteString(")\n\n")
	body(&f)
	u.src = f.String()
	u.returns = ownReturns(fset, file)
	return u
}

// firstCode is the index of the first line that is neither blank nor a
// comment, or -1.
func firstCode(lines []string) int {
	for i, l := range lines {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "//") {
			return i
		}
	}
	return -1
}

// lineDirective makes what follows report positions at line i of b's code.
func lineDirective(b block, i int) string {
	return fmt.Sprintf("//line %s:%d:1\n", b.file, b.line+i)
}

// split finds where a fragment's leading declarations end (k) and its
// trailing ones begin (j): the statements lines[k:j] go into a function.
// The leading declarations are as many as can be, except var declarations,
// which stay statements so that `var n = node.Stats()` sees the
// environment; the trailing ones as few as can be.
func split(lines []string) (k, j int, err error) {
	n := len(lines)
	parse := func(ls []string) *ast.File {
		f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+strings.Join(ls, "\n"), parser.SkipObjectResolution)
		if err != nil {
			return nil
		}
		return f
	}
	stmts := func(ls []string) error {
		_, err := parser.ParseFile(token.NewFileSet(), "", "package p\nfunc _() {\n"+strings.Join(ls, "\n")+"\n}", parser.SkipObjectResolution)
		return err
	}
	leading := make([]bool, n+1)
	for k := range leading {
		f := parse(lines[:k])
		leading[k] = f != nil && !slices.ContainsFunc(f.Decls, func(d ast.Decl) bool {
			g, ok := d.(*ast.GenDecl)
			return ok && g.Tok == token.VAR
		})
	}
	// Imports must come first: trailing declarations hold none.
	trailing := make([]bool, n+1)
	for j := range trailing {
		f := parse(lines[j:])
		trailing[j] = f != nil && len(f.Imports) == 0
	}
	for k := n; k >= 0; k-- {
		if !leading[k] {
			continue
		}
		for j := n; j >= k; j-- {
			if trailing[j] && stmts(lines[k:j]) == nil {
				return k, j, nil
			}
		}
	}
	return 0, 0, stmts(lines)
}

func envParams() string {
	var ps []string
	for _, p := range env {
		ps = append(ps, p.name+" "+p.typ)
	}
	return strings.Join(ps, ", ")
}

// missingImports are the package names a fragment uses as pkg.Name and
// neither imports nor declares, that the import table knows.
func missingImports(f *ast.File) []string {
	declared := map[string]bool{}
	for _, p := range env {
		declared[p.name] = true
	}
	for _, spec := range f.Imports {
		declared[importName(spec)] = true
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, e := range n.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						declared[id.Name] = true
					}
				}
			}
		case *ast.RangeStmt:
			if n.Tok == token.DEFINE {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if id, ok := e.(*ast.Ident); ok {
						declared[id.Name] = true
					}
				}
			}
		case *ast.ValueSpec:
			for _, id := range n.Names {
				declared[id.Name] = true
			}
		case *ast.TypeSpec:
			declared[n.Name.Name] = true
		case *ast.FuncDecl:
			if n.Recv == nil {
				declared[n.Name.Name] = true
			}
		case *ast.Field:
			for _, id := range n.Names {
				declared[id.Name] = true
			}
		}
		return true
	})
	var out []string
	for name := range used {
		if _, known := imports[name]; known && !declared[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// importName is the name an import declares: its alias, else (as a good
// guess) its path's last element that is not a major version.
func importName(spec *ast.ImportSpec) string {
	if spec.Name != nil {
		return spec.Name.Name
	}
	p := strings.Trim(spec.Path.Value, `"`)
	if base := path.Base(p); majorVersion.MatchString(base) {
		p = path.Dir(p)
	}
	return path.Base(p)
}

// ownReturns are the positions ("file:line", as //line maps them) of the
// return statements of the fragment's own statements, outside function
// literals: their result count is the fragment's business, not the docs'.
func ownReturns(fset *token.FileSet, f *ast.File) map[string]bool {
	out := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "_" || fd.Recv != nil || len(fd.Type.Params.List) != len(env) {
			continue
		}
		if len(fd.Body.List) == 0 {
			continue
		}
		// The body is { <statements> }; return nil: only the block is theirs.
		ast.Inspect(fd.Body.List[0], func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncLit:
				return false
			case *ast.ReturnStmt:
				p := fset.Position(n.Pos())
				out[fmt.Sprintf("%s:%d", p.Filename, p.Line)] = true
			}
			return true
		})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
