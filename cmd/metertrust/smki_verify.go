package main

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
)

// newSMKIVerifyCmd is "metertrust smki verify": path validation of SMKI
// certificates against the roots, CAs and latest CRLs in the store. The
// deviations from the SMKI profiles of the certificates on each path are
// printed as warnings; --strict refuses them.
func newSMKIVerifyCmd() *cobra.Command {
	var f caFlags
	var at string
	var requireRevocation, strict bool
	c := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Validate SMKI certificates (PEM or DER) against the store's roots, CAs and CRLs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			when := time.Now().UTC()
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return fmt.Errorf("--at %q: want RFC 3339, e.g. 2026-11-23T12:00:00Z", at)
				}
				when = t
			}
			db, err := openStoreFor(ctx, &f)
			if err != nil {
				return err
			}
			defer db.Close()
			opts, err := ca.VerifyOptions(ctx, db.SMKI(), when)
			if err != nil {
				return err
			}
			opts.RequireRevocationInfo = requireRevocation
			opts.Strict = strict
			type verdict struct {
				File     string             `json:"file"`
				Index    int                `json:"index"`
				Path     []string           `json:"path,omitempty"`
				OK       bool               `json:"ok"`
				Error    string             `json:"error,omitempty"`
				Warnings []smki.PathWarning `json:"warnings"`
			}
			var out []verdict
			failed := 0
			for _, file := range args {
				data, err := os.ReadFile(file)
				if err != nil {
					out = append(out, verdict{File: file, Error: err.Error(), Warnings: []smki.PathWarning{}})
					failed++
					continue
				}
				certs, err := readCertificates(data)
				if err != nil {
					out = append(out, verdict{File: file, Error: err.Error(), Warnings: []smki.PathWarning{}})
					failed++
					continue
				}
				for i, c := range certs {
					v := verdict{File: file, Index: i, Warnings: []smki.PathWarning{}}
					res, err := smki.VerifyPath(c, opts)
					if res != nil {
						for _, p := range res.Path {
							v.Path = append(v.Path, describeCert(p))
						}
						v.Warnings = append(v.Warnings, res.Warnings...)
					}
					if err != nil {
						v.Error = err.Error()
						failed++
					} else {
						v.OK = true
					}
					out = append(out, v)
				}
			}
			if f.json {
				if err := printJSON(cmd.OutOrStdout(), map[string]any{"at": when, "results": out, "failed": failed}); err != nil {
					return err
				}
			} else {
				for _, v := range out {
					name := v.File
					if v.Index > 0 {
						name = fmt.Sprintf("%s[%d]", v.File, v.Index)
					}
					if v.OK {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: OK: %s\n", name, strings.Join(v.Path, " <- "))
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: FAILED: %s\n", name, v.Error)
					}
					for _, w := range v.Warnings {
						fmt.Fprintf(cmd.OutOrStdout(), "warning: %s: %s: %s\n", w.Code, w.Certificate, w.Message)
					}
				}
			}
			if failed > 0 {
				return &exitStatus{code: 1, err: fmt.Errorf("%d of %d certificates failed validation at %s", failed, len(out), when.Format(time.RFC3339))}
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&at, "at", "", "validation time, RFC 3339 (default now)")
	c.Flags().BoolVar(&requireRevocation, "require-revocation", false, "fail a certificate whose issuer has no current CRL")
	c.Flags().BoolVar(&strict, "strict", false, "fail a certificate when any certificate on its path deviates from its SMKI profile (missing authority key id, NULL signature parameters, unknown role...)")
	return c
}

func describeCert(c *smki.Certificate) string {
	switch c.Kind {
	case smki.KindDevice:
		return fmt.Sprintf("device %s (%s)", c.EUI, smki.KeyUsageString(c.KeyUsage))
	case smki.KindOrganisation:
		return fmt.Sprintf("%s %s %s (%s)", c.Role, c.EUI, c.Subject.CommonName, smki.KeyUsageString(c.KeyUsage))
	}
	return fmt.Sprintf("%s %s", c.Kind, c.Subject.CommonName)
}

// readCertificates reads the certificates of a file: DER, or every
// CERTIFICATE block of a PEM file (other blocks, such as the private keys in
// bulk output files, are skipped).
func readCertificates(data []byte) ([]*smki.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return smki.ParseCertificates(data)
	}
	var out []*smki.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := smki.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CERTIFICATE PEM block")
	}
	return out, nil
}
