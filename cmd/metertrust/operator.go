package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/operator"
)

// newOperatorCmd is "metertrust operator": operator credentials shared by
// every service (package operator).
func newOperatorCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "operator",
		Short: "Manage DCC operator credentials",
	}
	c.AddCommand(newOperatorTokenCmd(), newOperatorPasswdCmd())
	return c
}

// newOperatorTokenCmd is "metertrust operator token": mint a bearer token.
func newOperatorTokenCmd() *cobra.Command {
	var f struct {
		name  string
		roles []string
		json  bool
	}
	c := &cobra.Command{
		Use:   "token",
		Short: "Mint an operator bearer token and print the credentials-file entry for it",
		Long: `Mint a random operator bearer token. The token is printed once, for the
operator alone; the services keep only its SHA-256, in the credentials file
every service reads (serve router --operators, serve repository --operators,
and the "operators" of the repository's --config):
  {"operators": [{"name": "alice", "token_sha256": "<hex>", "roles": ["quarantine-officer"]}]}
Add the printed entry to its "operators" list (deploy/examples/operators.json).

Roles: viewer, quarantine-officer and threshold-admin (the operator API),
publish and revoke (the certificate repository's writes). Give --role once
per role, or a comma-separated list.`,
		Example: `  metertrust operator token --name alice --role quarantine-officer
  metertrust operator token --name bob --role viewer,revoke --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var roles []operator.Role
			for _, r := range f.roles {
				role, err := operator.ParseRole(strings.TrimSpace(r))
				if err != nil {
					return err
				}
				roles = append(roles, role)
			}
			token, cred, err := operator.Mint(nil, f.name, roles)
			if err != nil {
				return err
			}
			entry, err := json.Marshal(cred)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				b, err := json.Marshal(struct {
					Token      string              `json:"token"`
					Credential operator.Credential `json:"credential"`
				}{token, cred})
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s\n", b)
				return err
			}
			_, err = fmt.Fprintf(out, "token for %s (shown once; give it to the operator alone):\n%s\n\nadd to the operators list of the credentials file:\n%s\n", cred.Name, token, entry)
			return err
		},
	}
	c.Flags().StringVar(&f.name, "name", "", "operator name, the actor in the audit log (required)")
	c.Flags().StringSliceVar(&f.roles, "role", nil, "role: viewer, quarantine-officer, threshold-admin, publish, revoke (repeatable; required)")
	c.Flags().BoolVar(&f.json, "json", false, `print {"token": ..., "credential": {...}} as one JSON object`)
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("role")
	return c
}

// newOperatorPasswdCmd is "metertrust operator passwd": set an operator's
// dashboard password in the credentials file.
func newOperatorPasswdCmd() *cobra.Command {
	var f struct {
		file, name string
		roles      []string
		stdin      bool
	}
	c := &cobra.Command{
		Use:   "passwd",
		Short: "Set an operator's dashboard password (argon2id) in the credentials file",
		Long: `Set the password an operator logs in to the dashboard (serve operator) with.
The credentials file keeps only its argon2id hash (password_argon2id); the
file is rewritten in place (its other entries kept, mode 0600). A name not
in the file is added with the roles given by --role. The password is read
twice from the terminal without echo, or once from the first line of
standard input with --password-stdin; it must be 12 to 256 characters.
Services read the file at start: restart serve operator to apply it.`,
		Example: `  metertrust operator passwd --operators /etc/metertrust/operators.json --name alice
  printf '%s\n' "$PW" | metertrust operator passwd --operators ops.json --name bob --role viewer --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var roles []operator.Role
			for _, r := range f.roles {
				role, err := operator.ParseRole(strings.TrimSpace(r))
				if err != nil {
					return err
				}
				roles = append(roles, role)
			}
			file, err := operator.LoadFile(f.file)
			if errors.Is(err, fs.ErrNotExist) {
				file, err = operator.File{}, nil
			}
			if err != nil {
				return err
			}
			i := slices.IndexFunc(file.Operators, func(c operator.Credential) bool { return c.Name == f.name })
			if i < 0 && len(roles) == 0 {
				return fmt.Errorf("operator %q is not in %s: give --role to add it", f.name, f.file)
			}
			pw, err := readNewPassword(cmd, f.stdin)
			if err != nil {
				return err
			}
			hash, err := operator.HashPassword(nil, pw)
			if err != nil {
				return err
			}
			if i < 0 {
				file.Operators = append(file.Operators, operator.Credential{Name: f.name, Roles: roles})
				i = len(file.Operators) - 1
			} else if len(roles) > 0 {
				file.Operators[i].Roles = roles
			}
			file.Operators[i].PasswordArgon2id = hash
			b, err := json.MarshalIndent(file, "", "  ")
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if _, err := operator.ParseFile(b); err != nil {
				return err
			}
			if err := writeFileAtomic(f.file, b, 0o600); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "password of %s set in %s\n", f.name, f.file)
			return err
		},
	}
	c.Flags().StringVar(&f.file, "operators", "", "the operator credentials file (required; created if missing)")
	c.Flags().StringVar(&f.name, "name", "", "operator name (required)")
	c.Flags().StringSliceVar(&f.roles, "role", nil, "roles of an operator added to the file, or its new roles (repeatable)")
	c.Flags().BoolVar(&f.stdin, "password-stdin", false, "read the password from the first line of standard input")
	_ = c.MarkFlagRequired("operators")
	_ = c.MarkFlagRequired("name")
	return c
}

// readNewPassword reads a new password: from the terminal twice without
// echo, or from the first line of standard input.
func readNewPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if !fromStdin {
		fh, ok := in.(*os.File)
		if !ok || !term.IsTerminal(int(fh.Fd())) {
			return "", errors.New("standard input is not a terminal: give --password-stdin to read the password from it")
		}
		read := func(prompt string) (string, error) {
			fmt.Fprint(cmd.ErrOrStderr(), prompt)
			b, err := term.ReadPassword(int(fh.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			return string(b), err
		}
		pw, err := read("new password: ")
		if err != nil {
			return "", err
		}
		again, err := read("again: ")
		if err != nil {
			return "", err
		}
		if pw != again {
			return "", errors.New("the two passwords differ")
		}
		return pw, operator.CheckNewPassword(pw)
	}
	line, err := bufio.NewReader(io.LimitReader(in, operator.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	return pw, operator.CheckNewPassword(pw)
}

// writeFileAtomic replaces path with data: a temporary file beside it,
// synced, then renamed over it, so a reader sees the old or the new file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
