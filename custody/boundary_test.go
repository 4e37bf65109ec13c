package custody

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyCustodyTouchesPrivateKeys enforces this package's rule: it is the one
// key custody. It parses every .go file of the module (testdata and hidden
// directories aside) and fails if any file outside keys/
//
//   - imports a PKCS#11 library or a key manager that reads key files
//     (forbiddenImports), or
//   - calls a crypto/x509 function that parses private keys
//     (ParsePKCS8PrivateKey, ParseECPrivateKey), or
//   - in a non-test file, calls one that encodes them
//     (MarshalPKCS8PrivateKey, MarshalECPrivateKey) or asserts a value to
//     *ecdsa.PrivateKey (reaching through a crypto.Signer for key material).
//
// The rule for tests: a _test.go file may marshal private keys, because
// fixtures of the formats keys refuses (RSA, P-384, SEC 1 beside PKCS#8)
// cannot come from keys; it may not parse them nor speak PKCS#11, and reads
// its key fixtures with custody.ParsePEM or custody.ReadFile.
func TestOnlyCustodyTouchesPrivateKeys(t *testing.T) {
	forbiddenImports := []string{
		"github.com/miekg/pkcs11",
		"github.com/ThalesGroup/crypto11",
		"go.step.sm/crypto/kms",
		"go.step.sm/crypto/kms/pkcs11",
		"go.step.sm/crypto/kms/softkms",
		"go.step.sm/crypto/pemutil",
	}
	parse := []string{"ParsePKCS8PrivateKey", "ParseECPrivateKey"}
	marshal := []string{"MarshalPKCS8PrivateKey", "MarshalECPrivateKey"}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root %s: %v", root, err)
	}
	self := filepath.Join(root, "custody")
	fset := token.NewFileSet()
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == self || d.Name() == "testdata" || (path != root && strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(root, path)
		isTest := strings.HasSuffix(path, "_test.go")
		x509Names, ecdsaNames := map[string]bool{}, map[string]bool{}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if slices.Contains(forbiddenImports, p) {
				t.Errorf("%s imports %s: only package custody may", rel, p)
			}
			name := filepath.Base(p)
			if imp.Name != nil {
				name = imp.Name.Name
			}
			switch p {
			case "crypto/x509":
				x509Names[name] = true
			case "crypto/ecdsa":
				ecdsaNames[name] = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				id, ok := n.X.(*ast.Ident)
				if !ok || !x509Names[id.Name] {
					return true
				}
				fn := n.Sel.Name
				if slices.Contains(parse, fn) || (!isTest && slices.Contains(marshal, fn)) {
					t.Errorf("%s:%d: x509.%s: only package custody reads or writes private keys", rel, fset.Position(n.Pos()).Line, fn)
				}
			case *ast.TypeAssertExpr:
				if isTest {
					return true
				}
				star, ok := n.Type.(*ast.StarExpr)
				if !ok {
					return true
				}
				if sel, ok := star.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "PrivateKey" {
					if id, ok := sel.X.(*ast.Ident); ok && ecdsaNames[id.Name] {
						t.Errorf("%s:%d: assertion to *ecdsa.PrivateKey: get keys from package custody as crypto.Signer or Agreement", rel, fset.Position(n.Pos()).Line)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("parsed only %d files under %s: not the module", files, root)
	}
}
