package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	corePath    = "github.com/aws/aws-sdk-go-v2"
	servicePath = corePath + "/service/"
)

// goModule is a module of this generator's build list.
type goModule struct {
	Path, Version, Dir string
}

// buildList returns the modules of the generator's go.mod, downloaded into
// the module cache (go list -m downloads them).
func buildList() ([]goModule, error) {
	cmd := exec.Command("go", "list", "-m", "-json", "all")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list -m -json all: %v: %s", err, errb.String())
	}
	var mods []goModule
	dec := json.NewDecoder(&out)
	for dec.More() {
		var m goModule
		if err := dec.Decode(&m); err != nil {
			return nil, err
		}
		mods = append(mods, m)
	}
	for i, m := range mods {
		if m.Dir == "" && m.Version != "" { // not in the cache yet
			cmd := exec.Command("go", "mod", "download", "-json", m.Path+"@"+m.Version)
			b, err := cmd.Output()
			if err != nil {
				return nil, fmt.Errorf("go mod download %s@%s: %v", m.Path, m.Version, err)
			}
			var d struct{ Dir string }
			if err := json.Unmarshal(b, &d); err != nil {
				return nil, err
			}
			mods[i].Dir = d.Dir
		}
	}
	return mods, nil
}

// isServiceModule reports whether path is a service client module (not one
// of the shared service/internal modules).
func isServiceModule(path string) bool {
	rest, ok := strings.CutPrefix(path, servicePath)
	return ok && !strings.Contains(rest, "/") && rest != "internal"
}

// readGoService reads a service module's endpoint data
// (internal/endpoints/endpoints.go) and SigV4 signing name (auth.go).
func readGoService(m goModule) (*service, error) {
	name := strings.TrimPrefix(m.Path, servicePath)
	s := &service{name: name, source: "service/" + name + "@" + m.Version, partitions: map[string]*servicePartition{}}
	var err error
	if s.signingName, err = goSigningName(filepath.Join(m.Dir, "auth.go")); err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	if err := goEndpoints(filepath.Join(m.Dir, "internal", "endpoints", "endpoints.go"), s); err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	return s, nil
}

// goSigningName returns the name that auth.go's auth scheme options pass
// to smithyhttp.SetSigV4SigningName, or "" for a service that signs no
// request with SigV4 (bearer tokens only).
func goSigningName(path string) (string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		return "", err
	}
	names := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || selectorName(call.Fun) != "smithyhttp.SetSigV4SigningName" || len(call.Args) != 2 {
			return true
		}
		if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			v, _ := strconv.Unquote(lit.Value)
			names[v] = true
		}
		return true
	})
	switch len(names) {
	case 0:
		return "", nil
	case 1:
		for n := range names {
			return n, nil
		}
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	return "", fmt.Errorf("auth.go names several SigV4 signing names: %v", list)
}

func selectorName(e ast.Expr) string {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		if x, ok := sel.X.(*ast.Ident); ok {
			return x.Name + "." + sel.Sel.Name
		}
	}
	return ""
}

// goEndpoints reads defaultPartitions from a generated endpoints.go into s.
func goEndpoints(path string, s *service) error {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		return err
	}
	var parts *ast.CompositeLit
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if len(vs.Names) == 1 && vs.Names[0].Name == "defaultPartitions" && len(vs.Values) == 1 {
				parts, _ = vs.Values[0].(*ast.CompositeLit)
			}
		}
	}
	if parts == nil {
		return fmt.Errorf("%s: no defaultPartitions", path)
	}
	for _, el := range parts.Elts {
		pl, ok := el.(*ast.CompositeLit)
		if !ok {
			return fmt.Errorf("%s: a partition is not a literal", path)
		}
		sp := &servicePartition{regionalized: true, defaults: map[variant]endpoint{}, endpoints: map[endpointKey]endpoint{}}
		var id string
		for _, fe := range pl.Elts {
			kv := fe.(*ast.KeyValueExpr)
			switch kv.Key.(*ast.Ident).Name {
			case "ID":
				id = stringLit(kv.Value)
			case "IsRegionalized":
				sp.regionalized = identName(kv.Value) == "true"
			case "PartitionEndpoint":
				sp.partitionEndpoint = stringLit(kv.Value)
			case "Defaults":
				for _, de := range kv.Value.(*ast.CompositeLit).Elts {
					dkv := de.(*ast.KeyValueExpr)
					k, err := goKey(dkv.Key)
					if err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
					sp.defaults[k.variant] = goEndpoint(dkv.Value)
				}
			case "Endpoints":
				for _, ee := range kv.Value.(*ast.CompositeLit).Elts {
					ekv := ee.(*ast.KeyValueExpr)
					k, err := goKey(ekv.Key)
					if err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
					sp.endpoints[k] = goEndpoint(ekv.Value)
				}
			}
		}
		s.partitions[id] = sp
	}
	return nil
}

// goKey reads an endpoints.DefaultKey or endpoints.EndpointKey literal.
func goKey(e ast.Expr) (endpointKey, error) {
	var k endpointKey
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return k, fmt.Errorf("a key is not a literal")
	}
	for _, el := range cl.Elts {
		kv := el.(*ast.KeyValueExpr)
		switch kv.Key.(*ast.Ident).Name {
		case "Region":
			k.region = stringLit(kv.Value)
		case "Variant":
			k.variant = goVariant(kv.Value)
		case "ServiceVariant":
			return k, fmt.Errorf("service variants are not understood")
		}
	}
	return k, nil
}

func goVariant(e ast.Expr) variant {
	switch x := e.(type) {
	case *ast.BinaryExpr:
		return goVariant(x.X) | goVariant(x.Y)
	case *ast.SelectorExpr:
		switch x.Sel.Name {
		case "FIPSVariant":
			return fips
		case "DualStackVariant":
			return dualStack
		}
	}
	return 0
}

// goEndpoint reads an endpoints.Endpoint literal.
func goEndpoint(e ast.Expr) endpoint {
	var ep endpoint
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return ep
	}
	for _, el := range cl.Elts {
		kv := el.(*ast.KeyValueExpr)
		switch kv.Key.(*ast.Ident).Name {
		case "Hostname":
			ep.hostname = stringLit(kv.Value)
		case "Deprecated":
			ep.deprecated = selectorName(kv.Value) == "aws.TrueTernary"
		case "CredentialScope":
			for _, ce := range kv.Value.(*ast.CompositeLit).Elts {
				ckv := ce.(*ast.KeyValueExpr)
				switch ckv.Key.(*ast.Ident).Name {
				case "Region":
					ep.scopeRegion = stringLit(ckv.Value)
				case "Service":
					ep.scopeService = stringLit(ckv.Value)
				}
			}
		}
	}
	return ep
}

func stringLit(e ast.Expr) string {
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		v, _ := strconv.Unquote(lit.Value)
		return v
	}
	return ""
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// operation is what an operation of a service module adds to the
// endpoint question: the static context parameters it binds (api_op_X.go:
// func (in *XInput) bindEndpointParams(p *EndpointParameters) {
// p.ServiceType = ptr.String("ACM") }), as a Go map literal or "" for
// none, and the host prefix of its endpoint trait (req.URL.Host = "data-"
// + req.URL.Host), "" for none; dynamicPrefix when the prefix is made
// from the input ({GraphIdentifier}., {AccountId}.), which only
// scope.go's rules for customers' hosts can know.
type operation struct {
	static        string
	hostPrefix    string
	dynamicPrefix bool
}

// goOperations returns the operations of the service module in dir. The
// endpoint rules of acm, neptunegraph and kinesis need the static
// parameters to answer at all; s3's UseObjectLambdaEndpoint names another
// host; the host prefixes name hosts the rules do not (MWAA's
// api.airflow, Cloud Map's data-servicediscovery).
func goOperations(dir string) ([]operation, error) {
	files, err := filepath.Glob(filepath.Join(dir, "api_op_*.go"))
	if err != nil {
		return nil, err
	}
	var ops []operation
	for _, path := range files {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return nil, err
		}
		var op operation
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || fd.Body == nil {
				continue
			}
			switch {
			case fd.Name.Name == "bindEndpointParams":
				op.static = staticParams(fd.Body)
			case fd.Name.Name == "HandleFinalize" && strings.HasPrefix(recvType(fd), "endpointPrefix_op"):
				op.hostPrefix, op.dynamicPrefix = hostPrefix(fd.Body)
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// staticParams reads p.X = ptr.String("v") and p.X = ptr.Bool(b) in a
// bindEndpointParams body, as a Go map literal with sorted keys.
func staticParams(body *ast.BlockStmt) string {
	var kvs []string
	for _, st := range body.List {
		as, ok := st.(*ast.AssignStmt)
		if !ok || len(as.Lhs) != 1 || len(as.Rhs) != 1 {
			continue
		}
		sel, ok := as.Lhs[0].(*ast.SelectorExpr)
		call, ok2 := as.Rhs[0].(*ast.CallExpr)
		if !ok || !ok2 || len(call.Args) != 1 {
			continue
		}
		var val string
		switch selectorName(call.Fun) {
		case "ptr.String":
			v := stringLit(call.Args[0])
			if v == "" {
				continue
			}
			val = strconv.Quote(v)
		case "ptr.Bool":
			val = identName(call.Args[0])
			if val != "true" && val != "false" {
				continue
			}
		default:
			continue // bound from the input (p.Bucket = in.Bucket): no static value
		}
		kvs = append(kvs, fmt.Sprintf("%q: %s", sel.Sel.Name, val))
	}
	if len(kvs) == 0 {
		return ""
	}
	sort.Strings(kvs)
	return "{" + strings.Join(kvs, ", ") + "}"
}

// hostPrefix reads the assignment req.URL.Host = PREFIX + req.URL.Host of
// an endpoint prefix middleware: a string literal PREFIX is static, any
// other expression is made from the input.
func hostPrefix(body *ast.BlockStmt) (prefix string, dynamic bool) {
	ast.Inspect(body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok || len(as.Lhs) != 1 || len(as.Rhs) != 1 || exprString(as.Lhs[0]) != "req.URL.Host" {
			return true
		}
		if be, ok := as.Rhs[0].(*ast.BinaryExpr); ok && be.Op == token.ADD && exprString(be.Y) == "req.URL.Host" {
			if lit, ok := be.X.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				prefix = stringLit(lit)
				return false
			}
		}
		dynamic = true
		return false
	})
	return prefix, dynamic
}

func recvType(fd *ast.FuncDecl) string {
	t := fd.Recv.List[0].Type
	if st, ok := t.(*ast.StarExpr); ok {
		t = st.X
	}
	return identName(t)
}

// exprString returns a selector chain such as req.URL.Host, or "".
func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		if s := exprString(x.X); s != "" {
			return s + "." + x.Sel.Name
		}
	}
	return ""
}
