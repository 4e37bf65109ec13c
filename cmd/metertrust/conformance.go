package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/conformance"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// newConformanceCmd is "metertrust conformance": the open conformance
// suite (package conformance, docs/conformance.md).
func newConformanceCmd() *cobra.Command {
	c := &cobra.Command{Use: "conformance", Short: "Check a device or router implementation against the GBCS security layer"}
	c.AddCommand(newConformanceRunCmd(), newConformanceVectorsCmd(), newConformanceKeystoreCmd(), newConformanceListCmd())
	return c
}

func newConformanceRunCmd() *cobra.Command {
	var (
		target, transport, url, ks, junit, html, device string
		only                                            []string
		timeout                                         time.Duration
		revoked                                         bool
		uf                                              userFlags
		rf                                              routerPartyFlags
	)
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the conformance cases against a device or a router",
		Long: `Run the conformance cases (docs/conformance.md) and print a summary; --junit and
--html also write the JUnit XML and HTML reports. The exit status is 1 when a
case of severity error fails.

  --target device --transport http --url http://host:port --keystore DIR
  --target device --transport gfi  --url host:port        --keystore DIR
  --target router --router https://host:port --cert C --key K --cacert CA
                  --signer KEY --device EUI [--repository URL]
                  [--third-party-cert C --third-party-key K --third-party-decrypt KEY --cin-prompt]
                  [--new-supplier-cert C --new-supplier-key K --new-supplier-signer KEY
                   --new-supplier-serials DS,KA,PPKA]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var rep *conformance.Report
			var err error
			switch target {
			case "device":
				rep, err = runDeviceConformance(ctx, transport, url, ks, timeout, only)
			case "router":
				rep, err = runRouterConformance(ctx, cmd, &uf, &rf, device, revoked, only)
			default:
				return fmt.Errorf("--target %q: want device or router", target)
			}
			if err != nil {
				return err
			}
			if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			for _, out := range []struct {
				path  string
				write func(io.Writer) error
			}{{junit, rep.WriteJUnit}, {html, rep.WriteHTML}} {
				if out.path == "" {
					continue
				}
				if err := writeFileWith(out.path, out.write); err != nil {
					return err
				}
			}
			if rep.Failed() {
				return &exitStatus{code: 1, err: fmt.Errorf("conformance: failed cases %v", rep.FailedIDs())}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&target, "target", "device", "what to test: device or router")
	fl.StringVar(&transport, "transport", "http", "device transport: http (POST of GBCS bytes) or gfi (GFI text framing over TCP)")
	fl.StringVar(&url, "url", "", "the device endpoint: http://host:port for http, host:port for gfi")
	fl.StringVar(&ks, "keystore", "", "keystore directory (conformance.json and keys; see docs/conformance.md)")
	fl.DurationVar(&timeout, "reply-timeout", 2*time.Second, "gfi: how long silence lasts before it counts as a discard")
	fl.StringVar(&device, "device", "", "router: the electricity meter (EUI-64) the user supplies, which the commands target")
	fl.StringSliceVar(&only, "case", nil, "run only these cases (ids or prefixes: MAC, CTR-02)")
	fl.StringVar(&junit, "junit", "", "write the JUnit XML report to this file")
	fl.StringVar(&html, "html", "", "write the HTML report to this file")
	fl.StringVar(&uf.router, "router", envOr("METERTRUST_ROUTER_URL", ""), "router: its URL, https://host:port")
	fl.StringVar(&uf.cert, "cert", "", "router: the user's DCCKI client certificate (PEM)")
	fl.StringVar(&uf.key, "key", "", "router: its private key (PEM)")
	fl.StringVar(&uf.cacert, "cacert", "", "router: the DCCKI root (PEM) the router's certificate chains to")
	fl.BoolVar(&revoked, "signer-revoked", false, "router: the user's DS certificate has been revoked for this second run: run RTR-REV-01 alone")
	fl.StringVar(&uf.signer, "signer", "", "router: the user's digital-signing key: a key file, softkms:path=FILE or pkcs11:...")
	fl.StringVar(&uf.repository, "repository", envOr("METERTRUST_REPOSITORY_URL", ""), "router: the SMKI repository (the meter's certificates, to check and decrypt its responses)")
	fl.StringVar(&rf.thirdParty.cert, "third-party-cert", "", "router: an other user's DCCKI client certificate (PEM), for RTR-CON and RTR-URP")
	fl.StringVar(&rf.thirdParty.key, "third-party-key", "", "router: its private key (PEM)")
	fl.StringVar(&rf.thirdParty.decrypt, "third-party-decrypt", "", "router: its key-agreement key (a key file, softkms:path=FILE or pkcs11:...)")
	fl.BoolVar(&rf.cinPrompt, "cin-prompt", false, "router: RTR-URP-01 asks on the terminal for the CIN the meter displays")
	fl.StringVar(&rf.newSupplier.cert, "new-supplier-cert", "", "router: the incoming supplier's DCCKI client certificate (PEM), for RTR-COS")
	fl.StringVar(&rf.newSupplier.key, "new-supplier-key", "", "router: its private key (PEM)")
	fl.StringVar(&rf.newSupplier.signer, "new-supplier-signer", "", "router: its digital-signing key")
	fl.StringSliceVar(&rf.serials, "new-supplier-serials", nil, "router: its DS, KA and prepayment KA certificate serial numbers (hex), as the repository lists them")
	return c
}

// routerPartyFlags are the second users of a router run: a third party
// and an incoming supplier.
type routerPartyFlags struct {
	thirdParty, newSupplier userFlags
	cinPrompt               bool
	serials                 []string
}

func runDeviceConformance(ctx context.Context, transport, url, dir string, timeout time.Duration, only []string) (*conformance.Report, error) {
	if url == "" || dir == "" {
		return nil, errors.New("--target device needs --url and --keystore")
	}
	ks, err := conformance.LoadKeystore(dir)
	if err != nil {
		return nil, err
	}
	var tr conformance.Transport
	switch transport {
	case "http":
		tr = &conformance.HTTPTransport{URL: url}
	case "gfi":
		g := &conformance.GFITransport{Addr: url, Timeout: timeout}
		defer g.Close()
		tr = g
	default:
		return nil, fmt.Errorf("--transport %q: want http or gfi", transport)
	}
	return conformance.RunDevice(ctx, conformance.DeviceConfig{Transport: tr, Keystore: ks, Name: transport + " " + url,
		Only: conformance.Select(only)})
}

func runRouterConformance(ctx context.Context, cmd *cobra.Command, uf *userFlags, rf *routerPartyFlags, device string, revoked bool,
	only []string) (*conformance.Report, error) {
	if uf.cert == "" || uf.key == "" || uf.cacert == "" || uf.signer == "" || device == "" {
		return nil, errors.New("--target router needs --router, --cert, --key, --cacert, --signer and --device")
	}
	eui, err := smki.ParseEUI(device)
	if err != nil {
		return nil, fmt.Errorf("--device: %w", err)
	}
	c, done, err := uf.client()
	if err != nil {
		return nil, err
	}
	defer done()
	signer, closeKey, err := custody.OpenKey(uf.signer, "")
	if err != nil {
		return nil, fmt.Errorf("--signer: %w", err)
	}
	defer closeKey()
	cfg := conformance.RouterConfig{Client: c, Signer: signer, Target: eui, Name: uf.router,
		SignerRevoked: revoked, Only: conformance.Select(only)}
	// other is a second user's client: the main user's router, roots and
	// repository, its own certificate and keys (closed when the run ends).
	var closers []func()
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	other := func(f *userFlags, what string) (*client.Client, error) {
		f.router, f.cacert, f.repository = uf.router, uf.cacert, uf.repository
		if f.cert == "" || f.key == "" {
			return nil, fmt.Errorf("--%s-cert and --%s-key go together", what, what)
		}
		c, done, err := f.client()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		closers = append(closers, done)
		return c, nil
	}
	if rf.thirdParty.cert != "" || rf.thirdParty.key != "" {
		if cfg.ThirdParty, err = other(&rf.thirdParty, "third-party"); err != nil {
			return nil, err
		}
		if rf.cinPrompt {
			cfg.ReadCIN = func(context.Context) (string, error) {
				fmt.Fprintf(cmd.ErrOrStderr(), "CIN the meter %s displays: ", eui)
				var cin string
				_, err := fmt.Fscanln(cmd.InOrStdin(), &cin)
				return cin, err
			}
		}
	}
	if rf.newSupplier.cert != "" || rf.newSupplier.key != "" {
		if len(rf.serials) != 3 {
			return nil, errors.New("--new-supplier-serials: want the DS, KA and prepayment KA serial numbers")
		}
		ns, err := other(&rf.newSupplier, "new-supplier")
		if err != nil {
			return nil, err
		}
		cfg.NewSupplier = &conformance.IncomingSupplier{Client: ns, DS: rf.serials[0], KA: rf.serials[1], PrepaymentKA: rf.serials[2]}
	}
	return conformance.RunRouter(ctx, cfg)
}

func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func newConformanceVectorsCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "vectors",
		Short: "Write deterministic test vectors (keys, messages, MACs, signatures, ciphertexts) with a README",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			if err := conformance.WriteVectors(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "test vectors written to %s\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write (created; must be empty)")
	return c
}

func newConformanceKeystoreCmd() *cobra.Command {
	var out, kind string
	c := &cobra.Command{
		Use:   "keystore",
		Short: "Write an example keystore and the reference meter it describes",
		Long: `Write a keystore directory for one reference meter (docs/conformance.md): a test
SMKI root, the parties' keys and organisation certificates, conformance.json,
the meter's keys under fleet/ and fleet.json. Then:

  metertrust serve fleet --config DIR/fleet.json --gfi-listen 127.0.0.1:8481
  metertrust conformance run --transport http --url http://127.0.0.1:8480 --keystore DIR`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			if err := conformance.GenerateKeystoreKind(out, time.Now(), kind); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "keystore written to %s\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write (created; must be empty)")
	c.Flags().StringVar(&kind, "kind", "electricity", "the reference meter's kind: electricity (ESME) or gas (GSME)")
	return c
}

func newConformanceListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the conformance cases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, c := range conformance.Cases() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-11s %-7s %-8s %-22s %s\n", c.ID, c.Target, c.Severity, c.Section, c.Title)
			}
			return nil
		},
	}
}
