package main

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// newCACmd is "metertrust ca": the SMKI and DCCKI certificate authorities.
func newCACmd() *cobra.Command {
	c := &cobra.Command{Use: "ca", Short: "SMKI and DCCKI certificate authorities: ceremonies, batches, issuance, revocation"}
	batch := &cobra.Command{Use: "batch", Short: "Batch Device CAs with a quota"}
	batch.AddCommand(newCABatchOpenCmd(), newCABatchShowCmd(), newCABatchCloseCmd())
	issue := &cobra.Command{Use: "issue", Short: "Issue certificates"}
	issue.AddCommand(newCAIssueOrgCmd(), newCAIssueDeviceCmd(), newCAIssueDevicesCmd(),
		newCAIssueTLSClientCmd(), newCAIssueTLSServerCmd())
	c.AddCommand(newCAInitCmd(), batch, issue, newCAImportCmd(), newCARevokeCmd(), newCACRLCmd(), newCAOCSPCmd(), newCARequestCmd(), newCAOrgCmd())
	return c
}

func newCAInitCmd() *cobra.Command {
	var f caFlags
	var req ca.InitRequest
	var configPath string
	c := &cobra.Command{
		Use:   "init",
		Short: "Init ceremony: SMKI root and OCA, DCCKI root and TLS CA; two officers (--officer twice) confirm with their passwords",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if configPath != "" {
				fh, err := os.Open(configPath)
				if err != nil {
					return err
				}
				fromFile, err := ca.ReadInitRequest(fh)
				fh.Close()
				if err != nil {
					return err
				}
				for _, n := range []string{"root-name", "oca-name", "dccki-root-name", "dccki-tls-name"} {
					if cmd.Flags().Changed(n) {
						return fmt.Errorf("--%s and --config: give the names in one place", n)
					}
				}
				req = fromFile
			}
			e, err := openCAEnv(ctx, cmd, &f, true)
			if err != nil {
				return err
			}
			defer e.Close()
			cas, err := e.auth.Init(ctx, req)
			if err != nil {
				return err
			}
			if err := writeCAConfig(f.data, e.cfg); err != nil {
				return err
			}
			if strings.Contains(e.cfg.KMS, "pin-value=") {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the PKCS#11 PIN is now stored in %s; prefer pin-source=FILE in --kms\n", caConfigFile)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"cas": cas, "kms": e.keys.Kind()})
			}
			for _, info := range cas {
				fmt.Fprintf(cmd.OutOrStdout(), "%-11s %-10s %s serial %s\n", info.Name, info.Kind, info.Subject, info.Serial)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "keys in %s; settings recorded in %s\n", e.keys.Kind(), caConfigFile)
			return nil
		},
	}
	f.register(c)
	f.registerCeremony(c)
	c.Flags().StringVar(&req.RootName, "root-name", "ZA", "CN of the SMKI Root CA")
	c.Flags().StringVar(&req.OCAName, "oca-name", "Z1", "CN of the Organisation CA")
	c.Flags().StringVar(&req.DCCKIRootName, "dccki-root-name", "metertrust DCCKI root", "CN of the DCCKI root")
	c.Flags().StringVar(&req.DCCKITLSName, "dccki-tls-name", "metertrust DCCKI TLS CA", "CN of the DCCKI TLS issuing CA")
	c.Flags().StringVar(&configPath, "config", "", `ceremony config file, strict JSON: {"root_name": ..., "oca_name": ..., "dccki_root_name": ..., "dccki_tls_name": ...}`)
	return c
}

func newCABatchOpenCmd() *cobra.Command {
	var f caFlags
	var name, purpose, proposalID, noProposal string
	var quota int64
	c := &cobra.Command{
		Use:   "open",
		Short: "Batch ceremony: open the Device CA of an approved batch-open proposal (two officers confirm); prints the batch id",
		Long: `Opens a batch Device CA, signed by the SMKI root, for a quota of device certificates.

Two-person control (decision 023): an operator with the issue role proposes the batch in the CA
service (POST /v1/proposals), a different one approves it there, and this ceremony, with two
officers, opens exactly the approved batch (--proposal ID: name, quota and purpose come from the
proposal; --name, --quota and --purpose, if given, must agree) and marks the proposal executed.
A proposal not approved, expired, rejected or executed already is refused.

--no-proposal REASON opens a batch from the flags without a proposal: meant for the very first
batch, before the CA service runs; the reason is audited (ca.batch.open.unproposed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			noProposal = strings.TrimSpace(noProposal)
			switch {
			case proposalID != "" && cmd.Flags().Changed("no-proposal"):
				return fmt.Errorf("--proposal and --no-proposal: give one")
			case proposalID == "" && noProposal == "":
				return fmt.Errorf("opening a batch needs an approved proposal (--proposal ID, proposed and approved in serve ca) or, for the very first batch, --no-proposal REASON (decision 023)")
			case proposalID == "" && (name == "" || !cmd.Flags().Changed("quota")):
				return fmt.Errorf("--no-proposal: --name and --quota are required")
			}
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			var info ca.CAInfo
			if proposalID != "" {
				given := batchFlags{name: name, quota: quota, purpose: purpose, quotaSet: cmd.Flags().Changed("quota"),
					purposeSet: cmd.Flags().Changed("purpose")}
				info, err = openProposedBatch(ctx, e, proposalID, given)
			} else {
				info, err = openUnproposedBatch(ctx, e, name, quota, purpose, noProposal)
			}
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintln(cmd.OutOrStdout(), info.Name)
			return nil
		},
	}
	f.register(c)
	f.registerCeremony(c)
	c.Flags().StringVar(&proposalID, "proposal", "", "the approved batch-open proposal to execute (approved in serve ca: POST /v1/proposals/{id}/approve)")
	c.Flags().StringVar(&noProposal, "no-proposal", "", "open without a proposal, saying why (the very first batch, before serve ca runs); audited")
	c.Flags().StringVar(&name, "name", "", "batch name, also the Device CA's CN and the batch id (from the proposal with --proposal)")
	c.Flags().Int64Var(&quota, "quota", 0, "device certificates the batch may issue (from the proposal with --proposal)")
	c.Flags().StringVar(&purpose, "purpose", "new", "what the batch issues: new (new devices: manufacturers, imports) or rekey (device re-keys through the registration service, decision 017)")
	return c
}

func newCABatchShowCmd() *cobra.Command {
	var f caFlags
	c := &cobra.Command{
		Use:   "show BATCH",
		Short: "Show a batch: quota, issued, state, key present or destroyed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			info, err := e.auth.Batch(ctx, args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "batch   %s\nsubject %s\nserial  %s\nquota   %d\nissued  %d\nstate   %s\nkey     %s\n",
				info.Name, info.Subject, info.Serial, info.Quota, info.Issued, info.State, info.Key)
			if r := info.Responder; r != nil {
				fmt.Fprintf(w, "OCSP    delegated responder, certificate %s, key %s\n", r.Serial, r.Key)
			}
			return nil
		},
	}
	f.register(c)
	return c
}

func newCABatchCloseCmd() *cobra.Command {
	var f caFlags
	var reason string
	c := &cobra.Command{
		Use:   "close BATCH",
		Short: "Close a batch: destroy its key (audited); its certificate stays published",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			if err := e.auth.CloseBatch(ctx, args[0], reason); err != nil {
				return err
			}
			info, err := e.auth.Batch(ctx, args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "batch %s closed after %d of %d certificates; key %s\n", info.Name, info.Issued, info.Quota, info.Key)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&reason, "reason", "closed by operator", "reason recorded in the audit log")
	return c
}

// certOutput is what issue commands print with --json.
type certOutput struct {
	CA       string `json:"ca"`
	Serial   string `json:"serial"`
	Kind     string `json:"kind"`
	EUI      string `json:"eui,omitempty"`
	Role     int    `json:"role"`
	UserRole string `json:"user_role,omitempty"`
	Usage    string `json:"usage"`
	NotAfter string `json:"not_after"`
	Out      string `json:"out,omitempty"`
	KeyOut   string `json:"key_out,omitempty"`
}

func newCertOutput(r store.Certificate, out string) certOutput {
	return certOutput{CA: r.CA, Serial: strings.ToUpper(hex.EncodeToString(r.Serial)), Kind: r.Kind, EUI: r.EUI,
		Role: r.Role, UserRole: r.UserRole, Usage: r.Usage, NotAfter: r.NotAfter.UTC().Format("2006-01-02T15:04:05Z"), Out: out}
}

func printCert(cmd *cobra.Command, asJSON bool, o certOutput) error {
	if asJSON {
		return printJSON(cmd.OutOrStdout(), o)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "issued %s certificate serial %s by %s", o.Kind, o.Serial, o.CA)
	if o.EUI != "" {
		fmt.Fprintf(cmd.OutOrStdout(), " for %s", o.EUI)
	}
	if o.Out != "" {
		fmt.Fprintf(cmd.OutOrStdout(), " -> %s", o.Out)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	return nil
}

func writeCertPEM(path string, der []byte) error {
	return ca.WriteNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// checkNew refuses an output path that exists, before any work is done.
func checkNew(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s", ca.ErrExists, p)
		}
	}
	return nil
}

func newCAIssueOrgCmd() *cobra.Command {
	var f caFlags
	var csrPath, role, eui, name, usage, out string
	c := &cobra.Command{
		Use:   "org",
		Short: "Issue an organisation certificate from a PKCS#10 request (by the OCA)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := smki.ParseRole(role)
			if err != nil {
				return err
			}
			e64, err := smki.ParseEUI(eui)
			if err != nil {
				return err
			}
			u, err := ca.ParseUsage(usage)
			if err != nil {
				return err
			}
			if err := checkNew(out); err != nil {
				return err
			}
			csr, err := os.ReadFile(csrPath)
			if err != nil {
				return err
			}
			return issueCert(cmd, &f, out, "", func(ctx context.Context, a *ca.Authority) (store.Certificate, []byte, error) {
				rec, err := a.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: r, EUI: e64, Name: name, Usage: u})
				return rec, nil, err
			})
		},
	}
	f.register(c)
	c.Flags().StringVar(&csrPath, "csr", "", "PKCS#10 request, PEM or DER (required)")
	c.Flags().StringVar(&role, "role", "", "remote party role: supplier, networkOperator, acb, tcos, wanProvider, other, ... (required)")
	c.Flags().StringVar(&eui, "eui", "", "organisation EUI-64 (required)")
	c.Flags().StringVar(&name, "name", "", "organisation name (subject CN)")
	c.Flags().StringVar(&usage, "usage", "", "ds, ka or pp-ka (required)")
	c.Flags().StringVar(&out, "out", "", "certificate output, PEM (required)")
	for _, n := range []string{"csr", "role", "eui", "usage", "out"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newCAIssueDeviceCmd() *cobra.Command {
	var f caFlags
	var batch, csrPath, out string
	c := &cobra.Command{
		Use:   "device",
		Short: "Issue a device certificate from a GB device request (by a batch Device CA)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkNew(out); err != nil {
				return err
			}
			csr, err := os.ReadFile(csrPath)
			if err != nil {
				return err
			}
			return issueCert(cmd, &f, out, "", func(ctx context.Context, a *ca.Authority) (store.Certificate, []byte, error) {
				rec, err := a.IssueDevice(ctx, batch, csr)
				return rec, nil, err
			})
		},
	}
	f.register(c)
	c.Flags().StringVar(&batch, "batch", "", "batch id (required)")
	c.Flags().StringVar(&csrPath, "csr", "", "device PKCS#10 request, PEM or DER (required)")
	c.Flags().StringVar(&out, "out", "", "certificate output, PEM (required)")
	for _, n := range []string{"batch", "csr", "out"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newCAIssueTLSClientCmd() *cobra.Command {
	var f caFlags
	var eui, userRole, keyOut, out, csr string
	c := &cobra.Command{
		Use:   "tls-client",
		Short: "Issue a DCCKI client certificate for a DCC user's mutual TLS: for its own key (--csr), or with a new key (--key-out)",
		Long: `Issue a DCCKI client certificate for a DCC user. With --csr, the user keeps
its private key: the request (PKCS#10, PEM or DER, any subject, e.g. from
"openssl req -new -key user.key -subj /CN=user") is checked and its key
certified under the user's EUI-64 and role. Without it the CA makes a key and
writes it to --key-out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e64, err := smki.ParseEUI(eui)
			if err != nil {
				return err
			}
			ur, err := smki.ParseUserRole(userRole)
			if err != nil {
				return err
			}
			if (csr == "") == (keyOut == "") {
				return fmt.Errorf("give exactly one of --csr (the user's own key) and --key-out (a key made here)")
			}
			if csr != "" {
				req, err := os.ReadFile(csr)
				if err != nil {
					return fmt.Errorf("--csr: %w", err)
				}
				return issueCert(cmd, &f, out, "", func(ctx context.Context, a *ca.Authority) (store.Certificate, []byte, error) {
					rec, err := a.IssueTLSClientCSR(ctx, req, e64, ur)
					return rec, nil, err
				})
			}
			return issueCert(cmd, &f, out, keyOut, func(ctx context.Context, a *ca.Authority) (store.Certificate, []byte, error) {
				is, err := a.IssueTLSClient(ctx, e64, ur)
				return is.Record, is.KeyPEM, err
			})
		},
	}
	f.register(c)
	c.Flags().StringVar(&eui, "eui", "", "the DCC user's EUI-64 (required)")
	c.Flags().StringVar(&userRole, "user-role", "", "DCC user role: IS, ES, GS, ED, GT, OU or RSA (required)")
	c.Flags().StringVar(&keyOut, "key-out", "", "private key output, PKCS#8 PEM, mode 0600 (without --csr)")
	c.Flags().StringVar(&csr, "csr", "", "the user's PKCS#10 request for its own key")
	c.Flags().StringVar(&out, "out", "", "certificate output, PEM (required)")
	for _, n := range []string{"eui", "user-role", "out"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newCAIssueTLSServerCmd() *cobra.Command {
	var f caFlags
	var dns []string
	var ipStrs []string
	var keyOut, out string
	c := &cobra.Command{
		Use:   "tls-server",
		Short: "Issue a DCCKI server certificate (and key) for a service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ips []net.IP
			for _, s := range ipStrs {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--ip %q is not an IP address", s)
				}
				ips = append(ips, ip)
			}
			return issueCert(cmd, &f, out, keyOut, func(ctx context.Context, a *ca.Authority) (store.Certificate, []byte, error) {
				is, err := a.IssueTLSServer(ctx, dns, ips)
				return is.Record, is.KeyPEM, err
			})
		},
	}
	f.register(c)
	c.Flags().StringSliceVar(&dns, "dns", nil, "DNS name (repeatable)")
	c.Flags().StringSliceVar(&ipStrs, "ip", nil, "IP address (repeatable)")
	c.Flags().StringVar(&keyOut, "key-out", "", "private key output, PKCS#8 PEM, mode 0600 (required)")
	c.Flags().StringVar(&out, "out", "", "certificate output, PEM (required)")
	c.MarkFlagRequired("key-out")
	c.MarkFlagRequired("out")
	return c
}

// issueCert is what every single-certificate issuance command does once
// its flags are parsed: refuse outputs that exist (before any key is
// touched), open the CA, issue, write the private key (DCCKI only, mode
// 0600, then wiped from memory) and the certificate, and report it. issue
// returns the certificate and, for DCCKI, its PKCS#8 key.
func issueCert(cmd *cobra.Command, f *caFlags, out, keyOut string,
	issue func(ctx context.Context, a *ca.Authority) (store.Certificate, []byte, error)) error {
	ctx := cmd.Context()
	if err := checkNew(keyOut, out); err != nil {
		return err
	}
	e, err := openCAEnv(ctx, cmd, f, false)
	if err != nil {
		return err
	}
	defer e.Close()
	rec, keyPEM, err := issue(ctx, e.auth)
	defer clear(keyPEM)
	if err != nil {
		return err
	}
	o := newCertOutput(rec, out)
	if keyOut != "" {
		if err := ca.WriteNewFile(keyOut, keyPEM, 0o600); err != nil {
			return err
		}
		o.KeyOut = keyOut
	}
	if err := writeCertPEM(out, rec.DER); err != nil {
		return err
	}
	return printCert(cmd, f.json, o)
}

func newCARevokeCmd() *cobra.Command {
	var f caFlags
	var serialHex, reasonName, caName string
	c := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a certificate by serial number with an RFC 5280 reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			serial, err := smki.ParseSerial(serialHex)
			if err != nil {
				return fmt.Errorf("--serial: %w", err)
			}
			reason, err := ca.ParseReason(reasonName)
			if err != nil {
				return err
			}
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			if caName != "" {
				if caName, err = e.auth.ResolveCA(ctx, caName); err != nil {
					return err
				}
			}
			rec, err := e.auth.Revoke(ctx, caName, serial, reason)
			if err != nil {
				return err
			}
			if f.json {
				o := newCertOutput(rec, "")
				return printJSON(cmd.OutOrStdout(), map[string]any{"certificate": o, "reason": ca.ReasonName(reason),
					"revoked_at": rec.RevokedAt.UTC().Format("2006-01-02T15:04:05Z")})
			}
			next := "publish a new CRL with: metertrust ca crl --ca " + rec.CA
			if info, err := e.auth.CA(ctx, rec.CA); err == nil && info.State == store.CAStateClosed {
				next = "the batch is closed: its final CRL cannot change, its OCSP responder answers \"revoked\""
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s certificate %X of %s (%s); %s\n", rec.Kind, rec.Serial, rec.CA, ca.ReasonName(reason), next)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&serialHex, "serial", "", "serial number, hex (required)")
	c.Flags().StringVar(&reasonName, "reason", "unspecified", "RFC 5280 reason: keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, ...")
	c.Flags().StringVar(&caName, "ca", "", "issuing CA (name or common name), when the serial is not unique")
	c.MarkFlagRequired("serial")
	return c
}

func newCACRLCmd() *cobra.Command {
	var f caFlags
	var caName, out string
	c := &cobra.Command{
		Use:   "crl",
		Short: "Sign and publish a new CRL for a CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := checkNew(out); err != nil {
				return err
			}
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			name, err := e.auth.ResolveCA(ctx, caName)
			if err != nil {
				return err
			}
			crl, err := e.auth.CRL(ctx, name)
			if err != nil {
				return err
			}
			if out != "" {
				if err := ca.WriteNewFile(out, crl.DER, 0o644); err != nil {
					return err
				}
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"ca": crl.CA, "number": crl.Number,
					"this_update": crl.ThisUpdate, "next_update": crl.NextUpdate, "out": out})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CRL %d of %s, next update %s", crl.Number, crl.CA, crl.NextUpdate.UTC().Format("2006-01-02T15:04:05Z"))
			if out != "" {
				fmt.Fprintf(cmd.OutOrStdout(), " -> %s", out)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&caName, "ca", "", "CA: its name (root, oca, dccki-root, dccki-tls, a batch id) or its common name (ZA, Z1) (required)")
	c.Flags().StringVar(&out, "out", "", "CRL output, DER")
	c.MarkFlagRequired("ca")
	return c
}

// newCAOCSPCmd is "metertrust ca ocsp": the OCSP responses the CAs sign
// ahead of time for the repository to serve (decision record 010).
func newCAOCSPCmd() *cobra.Command {
	c := &cobra.Command{Use: "ocsp", Short: "OCSP responses signed ahead of time"}
	c.AddCommand(newCAOCSPRefreshCmd())
	return c
}

// newCAOCSPRefreshCmd is "metertrust ca ocsp refresh": one run of the
// refresher, for a timer where no process holding the online CA keys runs
// it (serve all and serve repository with its revocation keys do).
func newCAOCSPRefreshCmd() *cobra.Command {
	var f caFlags
	var margin time.Duration
	c := &cobra.Command{
		Use:   "refresh",
		Short: "Re-sign the OCSP responses that expire within --margin, and sign those missing",
		Long: `Re-sign, with the online CAs' keys (the OCA, open batch Device CAs, the DCCKI TLS
CA; never the root's), every stored OCSP response that expires within --margin
(default half the responses' validity), and sign one for every certificate of
an online CA that has none. The repository serves these responses and holds no
key at all, so something must run this at least every --margin: serve all
and serve ca do it every hour; otherwise run this command from a timer
(systemd, cron) where the CA keys are.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			if margin == 0 {
				margin = e.auth.OCSPValidity() / 2
			}
			n, err := e.auth.RefreshOCSP(ctx, margin)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"signed": n, "margin": margin.String()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d OCSP responses signed (margin %s)\n", n, margin)
			return nil
		},
	}
	f.register(c)
	c.Flags().DurationVar(&margin, "margin", 0, "re-sign the responses expiring within this long; default half their validity")
	return c
}
