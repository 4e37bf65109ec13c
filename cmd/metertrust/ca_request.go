package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/smki"
)

// tokenEnv names the environment variable that may hold an operator's
// bearer token for the CA service's clients.
const tokenEnv = "METERTRUST_OPERATOR_TOKEN"

// caAPIFlags are the flags every client of the CA service shares: where it
// is, the DCCKI client certificate to present, the roots to trust, and, for
// an operator, the token.
type caAPIFlags struct {
	url, cert, key, cacert, tokenFile string
	json                              bool
}

func (f *caAPIFlags) register(c *cobra.Command, operator bool) {
	fl := c.Flags()
	fl.StringVar(&f.url, "ca-url", envOr("METERTRUST_CA_URL", "https://"+ra.DefaultListen), "the CA service (serve ca), https://host:port (default $METERTRUST_CA_URL)")
	fl.StringVar(&f.cert, "cert", "", "DCCKI client certificate (PEM) to present (required)")
	fl.StringVar(&f.key, "key", "", "its private key (PEM) (required)")
	fl.StringVar(&f.cacert, "cacert", "", "CA certificates (PEM) the service's certificate chains to, e.g. the DCCKI root (required)")
	if operator {
		fl.StringVar(&f.tokenFile, "token-file", "", "file holding the operator's bearer token (default $"+tokenEnv+")")
	}
	fl.BoolVar(&f.json, "json", false, "print the answer as JSON")
	for _, n := range []string{"cert", "key", "cacert"} {
		c.MarkFlagRequired(n)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// client returns the API client; operator says a token is required.
func (f *caAPIFlags) client(operator bool) (*ra.Client, error) {
	kp, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("--cert/--key: %w", err)
	}
	pem, err := os.ReadFile(f.cacert)
	if err != nil {
		return nil, fmt.Errorf("--cacert: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--cacert: %s holds no PEM certificate", f.cacert)
	}
	token := ""
	if operator {
		token = os.Getenv(tokenEnv)
		if f.tokenFile != "" {
			b, err := os.ReadFile(f.tokenFile)
			if err != nil {
				return nil, fmt.Errorf("--token-file: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
		if token == "" {
			return nil, fmt.Errorf("an operator's token is required: --token-file FILE or $%s", tokenEnv)
		}
	}
	return ra.NewClient(f.url, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{kp}}, token)
}

// print writes v as JSON with --json, else text.
func (f *caAPIFlags) print(cmd *cobra.Command, v any, text func(w *tabwriter.Writer)) error {
	if f.json {
		return printJSON(cmd.OutOrStdout(), v)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

func printRequest(w *tabwriter.Writer, r ra.RequestView) {
	fmt.Fprintf(w, "id\t%s\nstate\t%s\norganisation\t%s\nrole\t%s\nusage\t%s\napprovals\t%d of %d (%s)\n", r.ID, r.State, r.Organisation,
		r.Role, r.Usage, len(r.Approvals), r.ApprovalsNeeded, strings.Join(r.Approvals, ", "))
	if r.Reason != "" {
		fmt.Fprintf(w, "reason\t%s\n", r.Reason)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error\t%s\n", r.Error)
	}
	if c := r.Certificate; c != nil {
		fmt.Fprintf(w, "certificate\t%s/%s\n", c.CA, c.Serial)
	}
}

// newCARequestCmd is "metertrust ca request": the clients of the CA
// service's API (serve ca), for organisations and operators.
func newCARequestCmd() *cobra.Command {
	c := &cobra.Command{Use: "request", Short: "Certificate requests, approvals and revocation through the CA service (serve ca)",
		Long: `Clients of the CA service's API (metertrust serve ca; docs/api/ca.yaml). Every
command presents a DCCKI client certificate (--cert, --key) and trusts
--cacert; operators' commands also send an operator's token (--token-file or
$` + tokenEnv + `). An organisation submits with its own certificate alone
and reads its own requests; operators list, approve (two different operators
for the DCC's own roles) and reject them, revoke, and ask for a CRL.`}
	c.AddCommand(newCARequestSubmitCmd(), newCARequestDeviceCmd(), newCARequestImportCmd(), newCARequestShowCmd(), newCARequestListCmd(), newCARequestDecideCmd("approve"),
		newCARequestDecideCmd("reject"), newCARequestRevokeCmd(), newCARequestCRLCmd())
	return c
}

func newCARequestSubmitCmd() *cobra.Command {
	var f caAPIFlags
	var r ra.SubmitRequest
	var csrFile string
	c := &cobra.Command{
		Use:   "submit",
		Short: "Submit the calling organisation's request for an organisation certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(csrFile)
			if err != nil {
				return fmt.Errorf("--csr: %w", err)
			}
			r.CSR = csrField(b)
			cl, err := f.client(false)
			if err != nil {
				return err
			}
			v, err := cl.Submit(cmd.Context(), r)
			if err != nil {
				return err
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) { printRequest(w, v) })
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&r.Role, "role", "", "Remote Party Role: supplier, networkOperator, accessControlBroker, ... (required)")
	c.Flags().StringVar(&r.Usage, "usage", "", "ds, ka or pp-ka (required)")
	c.Flags().StringVar(&r.Name, "name", "", "the certificate's common name")
	c.Flags().StringVar(&csrFile, "csr", "", "the PKCS#10 request, PEM or DER, e.g. from metertrust keys new (required)")
	for _, n := range []string{"role", "usage", "csr"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newCARequestDeviceCmd() *cobra.Command {
	var f caAPIFlags
	var batchName, csrFile, out string
	c := &cobra.Command{
		Use:   "device",
		Short: "As a registered manufacturer, have one device certificate issued at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(csrFile)
			if err != nil {
				return fmt.Errorf("--csr: %w", err)
			}
			cl, err := f.client(false)
			if err != nil {
				return err
			}
			v, err := cl.SubmitDevice(cmd.Context(), batchName, csrField(b))
			if err != nil {
				return err
			}
			if out != "" {
				if err := os.WriteFile(out, []byte(v.Certificate), 0o644); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "issued\t%s/%s for %s (%s)\n", v.CA, v.Serial, v.EUI, v.Usage)
			})
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&batchName, "batch", "", "the open batch Device CA (required)")
	c.Flags().StringVar(&csrFile, "csr", "", "the device's PKCS#10 request, PEM or DER (required)")
	c.Flags().StringVar(&out, "out", "", "write the certificate (PEM) here")
	c.MarkFlagRequired("batch")
	c.MarkFlagRequired("csr")
	return c
}

func newCARequestImportCmd() *cobra.Command {
	var f caAPIFlags
	var batchName, file, sigFile string
	var skipBad bool
	c := &cobra.Command{
		Use:   "import",
		Short: "As a registered manufacturer, send a signed provisioning file: every device is issued under the batch",
		Long: `Send a provisioning file (docs/provisioning.md) and its detached signature to
the CA service as the manufacturer whose DCCKI certificate you present; the
service checks the signature against your digital-signing certificate, every
entry, the inventory and the batch's quota, and issues the whole file before
it answers. For files over 64 MiB or 50,000 devices, the CA's operators run
metertrust ca import on its data directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sigFile == "" {
				sigFile = file + ".sig"
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("--file: %w", err)
			}
			sigText, err := os.ReadFile(sigFile)
			if err != nil {
				return fmt.Errorf("--sig: %w", err)
			}
			sig, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(sigText)), ""))
			if err != nil {
				return fmt.Errorf("--sig: %s is not base64: %w", sigFile, err)
			}
			cl, err := f.client(false)
			if err != nil {
				return err
			}
			v, err := cl.Import(cmd.Context(), batchName, data, sig, skipBad)
			if err != nil {
				return err
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "imported\t%d devices (%d certificates) from batch %s, EUIs %s to %s\n", v.Devices, v.Certificates, v.Batch, v.FirstEUI, v.LastEUI)
				for _, r := range v.Refused {
					fmt.Fprintf(w, "refused\tline %d (%s): %s\n", r.Line, r.EUI, r.Reason)
				}
				for _, s := range v.Skipped {
					fmt.Fprintf(w, "skipped\tline %d (%s): %s\n", s.Line, s.EUI, s.Reason)
				}
			})
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&batchName, "batch", "", "the open batch Device CA (required)")
	c.Flags().StringVar(&file, "file", "", "the provisioning file (required)")
	c.Flags().StringVar(&sigFile, "sig", "", "its detached signature, base64 (default FILE.sig)")
	c.Flags().BoolVar(&skipBad, "skip-bad", false, "issue the good devices and list the others instead of refusing the file")
	c.MarkFlagRequired("batch")
	c.MarkFlagRequired("file")
	return c
}

func newCARequestShowCmd() *cobra.Command {
	var f caAPIFlags
	c := &cobra.Command{
		Use:   "show ID",
		Short: "Show a request: to its organisation (no token) or to an operator",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(f.tokenFile != "" || os.Getenv(tokenEnv) != "")
			if err != nil {
				return err
			}
			v, err := cl.Request(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) { printRequest(w, v) })
		},
	}
	f.register(c, true)
	return c
}

func newCARequestListCmd() *cobra.Command {
	var f caAPIFlags
	var state, org string
	c := &cobra.Command{
		Use:   "list",
		Short: "List requests (an operator): the pending queue by default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var eui smki.EUI
			if org != "" {
				var err error
				if eui, err = smki.ParseEUI(org); err != nil {
					return fmt.Errorf("--organisation: %w", err)
				}
			}
			cl, err := f.client(true)
			if err != nil {
				return err
			}
			rs, err := cl.Requests(cmd.Context(), state, eui)
			if err != nil {
				return err
			}
			return f.print(cmd, rs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tSTATE\tORGANISATION\tROLE\tUSAGE\tAPPROVALS\tSUBMITTED")
				for _, r := range rs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, r.State, r.Organisation, r.Role, r.Usage, len(r.Approvals), r.ApprovalsNeeded, r.SubmittedAt)
				}
			})
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&state, "state", "", "pending (default), issuing, issued, failed, rejected or all")
	c.Flags().StringVar(&org, "organisation", "", "only this organisation's (EUI-64)")
	return c
}

// newCARequestDecideCmd is "ca request approve" or "ca request reject".
func newCARequestDecideCmd(verb string) *cobra.Command {
	var f caAPIFlags
	var reason string
	c := &cobra.Command{
		Use: verb + " ID",
		Short: map[string]string{"approve": "Approve a request (an operator with the issue role); the last approval needed issues it",
			"reject": "Reject a request, with a reason (an operator with the issue role)"}[verb],
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(true)
			if err != nil {
				return err
			}
			var v ra.RequestView
			if verb == "approve" {
				v, err = cl.Approve(cmd.Context(), args[0], reason)
			} else {
				v, err = cl.Reject(cmd.Context(), args[0], reason)
			}
			if err != nil {
				return err
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) { printRequest(w, v) })
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&reason, "reason", "", "why (required to reject)")
	if verb == "reject" {
		c.MarkFlagRequired("reason")
	}
	return c
}

func newCARequestRevokeCmd() *cobra.Command {
	var f caAPIFlags
	var caName, serial, reason string
	c := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a certificate through the CA service (an operator with the revoke role)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client(true)
			if err != nil {
				return err
			}
			v, err := cl.Revoke(cmd.Context(), caName, serial, reason)
			if err != nil {
				return err
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "revoked\t%s/%s at %s (%s)\n", v.Certificate.CA, v.Certificate.Serial, v.Certificate.RevokedAt, v.Certificate.RevocationReason)
				if v.CRL != nil {
					fmt.Fprintf(w, "CRL\t%s number %d, next update %s\n", v.CRL.CA, v.CRL.Number, v.CRL.NextUpdate)
				} else {
					fmt.Fprintf(w, "CRL\t%s\n", v.CRLPending)
				}
			})
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&caName, "ca", "", "the issuing CA's name (required)")
	c.Flags().StringVar(&serial, "serial", "", "the certificate's serial number, hex (required)")
	c.Flags().StringVar(&reason, "reason", "unspecified", "RFC 5280 reason name or code: keyCompromise, superseded, ...")
	c.MarkFlagRequired("ca")
	c.MarkFlagRequired("serial")
	return c
}

func newCARequestCRLCmd() *cobra.Command {
	var f caAPIFlags
	var caName string
	c := &cobra.Command{
		Use:   "crl",
		Short: "Have an online CA sign a CRL now (an operator with the revoke role)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client(true)
			if err != nil {
				return err
			}
			v, err := cl.CRL(cmd.Context(), caName)
			if err != nil {
				return err
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "CRL\t%s number %d, %s to %s\n", v.CA, v.Number, v.ThisUpdate, v.NextUpdate)
			})
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&caName, "ca", "", "the CA's name (required)")
	c.MarkFlagRequired("ca")
	return c
}

// newCAOrgCmd is "metertrust ca org": organisations' registrations with the
// CA service's registration authority.
func newCAOrgCmd() *cobra.Command {
	c := &cobra.Command{Use: "org", Short: "Organisations registered with the CA service's registration authority"}
	var f caAPIFlags
	var reg ra.OrganisationRecord
	var withdraw bool
	register := &cobra.Command{
		Use:   "register EUI",
		Short: "Register an organisation or change its registration (an operator with the register role)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eui, err := smki.ParseEUI(args[0])
			if err != nil {
				return err
			}
			if withdraw {
				reg.State = "withdrawn"
			}
			cl, err := f.client(true)
			if err != nil {
				return err
			}
			v, err := cl.RegisterOrganisation(cmd.Context(), eui, reg)
			if err != nil {
				return err
			}
			return f.print(cmd, v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "%s\t%s\t%s\tmanufacturer=%v\t%s\n", v.EUI, v.Name, strings.Join(v.Roles, ","), v.Manufacturer, v.State)
			})
		},
	}
	f.register(register, true)
	register.Flags().StringVar(&reg.Name, "name", "", "the organisation's name (required)")
	register.Flags().StringSliceVar(&reg.Roles, "role", nil, "Remote Party Role it may hold certificates for (repeatable)")
	register.Flags().BoolVar(&reg.Manufacturer, "manufacturer", false, "it may submit device certificate requests")
	register.Flags().BoolVar(&withdraw, "withdraw", false, "withdraw the registration: it may submit nothing more")
	register.MarkFlagRequired("name")
	var lf caAPIFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the registered organisations (an operator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := lf.client(true)
			if err != nil {
				return err
			}
			orgs, err := cl.Organisations(cmd.Context())
			if err != nil {
				return err
			}
			return lf.print(cmd, orgs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "EUI\tNAME\tROLES\tMANUFACTURER\tSTATE")
				for _, o := range orgs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", o.EUI, o.Name, strings.Join(o.Roles, ","), o.Manufacturer, o.State)
				}
			})
		},
	}
	lf.register(list, true)
	c.AddCommand(register, list)
	return c
}

// csrField is a CSR file's contents as the API's csr field: PEM as it is,
// DER as base64.
func csrField(b []byte) string {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		return string(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}
