package main

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// newKeysCmd is "metertrust keys": key pairs and requests for the parties
// the CA certifies (a supplier, a meter).
func newKeysCmd() *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "Key pairs and certificate requests"}
	c.AddCommand(newKeysNewCmd())
	return c
}

func newKeysNewCmd() *cobra.Command {
	var usage, keyOut, csrOut, device, eui, role, name string
	var asJSON bool
	c := &cobra.Command{
		Use:   "new",
		Short: "Generate a P-256 key pair and an SMKI request: organisation form, or device form with --device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tmpl := &smki.CSRTemplate{}
			switch usage {
			case "ds":
				tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			case "ka", "pp-ka":
				tmpl.KeyUsage = x509.KeyUsageKeyAgreement
			default:
				return fmt.Errorf("--usage %q: want ds or ka", usage)
			}
			switch {
			case device != "":
				if eui != "" || role != "" || name != "" {
					return fmt.Errorf("--device takes no --eui, --role or --name: a device request has an empty subject")
				}
				e64, err := smki.ParseEUI(device)
				if err != nil {
					return err
				}
				tmpl.Kind, tmpl.EUI, tmpl.HWType = smki.KindDevice, e64, smki.OIDHWTypeReferenceMeter
			default:
				if eui == "" || role == "" {
					return fmt.Errorf("an organisation request needs --eui and --role (or give --device EUI for a device request)")
				}
				e64, err := smki.ParseEUI(eui)
				if err != nil {
					return err
				}
				r, err := smki.ParseRole(role)
				if err != nil {
					return err
				}
				tmpl.Kind, tmpl.EUI, tmpl.Role, tmpl.CommonName = smki.KindOrganisation, e64, r, name
			}
			if strings.HasPrefix(keyOut, "pkcs11:") {
				if tmpl.KeyUsage != x509.KeyUsageKeyAgreement {
					return fmt.Errorf("--key pkcs11:...: only key-agreement keys (--usage ka or pp-ka) are made in a token here; digital-signing keys in an HSM go through the CAs' key custody (--kms)")
				}
				if err := checkNew(csrOut); err != nil {
					return err
				}
				k, err := custody.GenerateToken(keyOut)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				defer k.Close()
				csr, err := smki.CreateCSR(rand.Reader, tmpl, k)
				if err != nil {
					return fmt.Errorf("the key was made in the token but its request was not: %w", err)
				}
				return writeRequest(cmd, tmpl, usage, keyOut, csrOut, csr, asJSON)
			}
			if err := checkNew(keyOut, csrOut); err != nil {
				return err
			}
			key, err := custody.Generate(rand.Reader)
			if err != nil {
				return err
			}
			csr, err := smki.CreateCSR(rand.Reader, tmpl, key)
			if err != nil {
				return err
			}
			if err := custody.WriteFile(keyOut, key); err != nil {
				return err
			}
			return writeRequest(cmd, tmpl, usage, keyOut, csrOut, csr, asJSON)
		},
	}
	c.Flags().StringVar(&usage, "usage", "", "ds or ka (pp-ka is a ka key) (required)")
	c.Flags().StringVar(&keyOut, "key", "", "private key output, PKCS#8 PEM, mode 0600; or a pkcs11: URI (ka keys) to make the key in a token (required)")
	c.Flags().StringVar(&csrOut, "csr", "", "request output, PEM (required)")
	c.Flags().StringVar(&device, "device", "", "device EUI-64: make a device request (empty subject, hardwareModuleName)")
	c.Flags().StringVar(&eui, "eui", "", "organisation EUI-64 (organisation form)")
	c.Flags().StringVar(&role, "role", "", "organisation remote party role (organisation form)")
	c.Flags().StringVar(&name, "name", "", "organisation name, subject CN (organisation form, optional)")
	c.Flags().BoolVar(&asJSON, "json", false, "machine-readable JSON output")
	for _, n := range []string{"usage", "key", "csr"} {
		c.MarkFlagRequired(n)
	}
	return c
}

// writeRequest writes the certificate request and reports what was made. A
// key URI is shown without its query, where a PIN may be.
func writeRequest(cmd *cobra.Command, tmpl *smki.CSRTemplate, usage, keyOut, csrOut string, csr []byte, asJSON bool) error {
	keyOut, _, _ = strings.Cut(keyOut, "?")
	if err := ca.WriteNewFile(csrOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644); err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), map[string]any{"kind": tmpl.Kind.String(), "eui": tmpl.EUI.String(),
			"usage": usage, "key": keyOut, "csr": csrOut})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s request for %s: key %s, request %s\n", tmpl.Kind, usage, tmpl.EUI, keyOut, csrOut)
	return nil
}
