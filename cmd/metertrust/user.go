package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// userFlags are the flags of the DCC users' commands: the router, the
// user's DCCKI certificate, and the keys it acts with.
type userFlags struct {
	router, repository, cert, key, cacert, signer, decrypt string
	json                                                   bool
}

func (f *userFlags) register(c *cobra.Command, signer bool) {
	fl := c.Flags()
	fl.StringVar(&f.router, "router", envOr("METERTRUST_ROUTER_URL", ""), "the router, https://host:port (default $METERTRUST_ROUTER_URL)")
	fl.StringVar(&f.repository, "repository", envOr("METERTRUST_REPOSITORY_URL", ""), "the SMKI repository, where devices' certificates are (to check and decrypt responses)")
	fl.StringVar(&f.cert, "cert", "", "the user's DCCKI client certificate (PEM) (required)")
	fl.StringVar(&f.key, "key", "", "its private key (PEM) (required)")
	fl.StringVar(&f.cacert, "cacert", "", "the DCCKI root (PEM) the router's certificate chains to (required)")
	if signer {
		fl.StringVar(&f.signer, "signer", "", "the user's digital-signing key, for critical commands: a key file, softkms:path=FILE or pkcs11:...")
	}
	fl.StringVar(&f.decrypt, "decrypt", "", "the user's key-agreement key, to check MACs and decrypt: a key file, softkms:path=FILE or pkcs11:...")
	fl.BoolVar(&f.json, "json", false, "print JSON")
	for _, n := range []string{"cert", "key", "cacert"} {
		c.MarkFlagRequired(n)
	}
}

// client opens the keys and returns the router client; done closes them.
func (f *userFlags) client() (c *client.Client, done func(), err error) {
	if f.router == "" {
		return nil, nil, fmt.Errorf("--router is required (or $METERTRUST_ROUTER_URL)")
	}
	kp, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, nil, fmt.Errorf("--cert/--key: %w", err)
	}
	pem, err := os.ReadFile(f.cacert)
	if err != nil {
		return nil, nil, fmt.Errorf("--cacert: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("--cacert: %s holds no PEM certificate", f.cacert)
	}
	cfg := client.Config{Router: f.router, Repository: f.repository, TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots,
		Certificates: []tls.Certificate{kp}}}
	var closers []func()
	done = func() {
		for _, c := range closers {
			c()
		}
	}
	if f.signer != "" {
		k, closeKey, err := custody.OpenKey(f.signer, "")
		if err != nil {
			return nil, nil, fmt.Errorf("--signer: %w", err)
		}
		cfg.Signer, closers = k, append(closers, closeKey)
	}
	if f.decrypt != "" {
		k, closeKey, err := custody.OpenKey(f.decrypt, "")
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("--decrypt: %w", err)
		}
		cfg.KeyAgreement, closers = k, append(closers, closeKey)
	}
	c, err = client.New(cfg)
	if err != nil {
		done()
		return nil, nil, err
	}
	return c, done, nil
}

// withDevice reads the device EUI-64 arg (named name in errors), opens the
// user's client and keys, and runs fn with both, closing the keys after.
func (f *userFlags) withDevice(name, arg string, fn func(c *client.Client, device smki.EUI) error) error {
	eui, err := smki.ParseEUI(arg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	c, done, err := f.client()
	if err != nil {
		return err
	}
	defer done()
	return fn(c, eui)
}

// newUserCmd is "metertrust user": a DCC user's commands to the router,
// built on package client.
func newUserCmd() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "A DCC user's service requests, commands, responses and alerts (package client)"}
	c.AddCommand(newUserSendCmd(), newUserWatchCmd(), newUserChangeSupplierCmd(), newUserRotateKeysCmd(), newUserRekeyDeviceCmd(), newUserThresholdsCmd())
	return c
}

func newUserSendCmd() *cobra.Command {
	var f userFlags
	var paramsFile string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "send SRV TARGET [PARAM=VALUE...]",
		Short: "Send a service request: the router builds the command, signed here when critical, then submitted",
		Long: `Send a DUIS service request (SRV, such as 4.1.1 or 7.2) for the device TARGET
(EUI-64): the router builds the GBCS command (the pre-command); a critical one
is signed with --signer; it is then submitted. Parameters are PARAM=VALUE
arguments or a JSON object in --params FILE. Prints the command's ID; with
--wait, waits for the device's response and prints it checked (signature or
MAC) and decrypted with --decrypt, which needs --repository for the device's
certificates.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			params, err := userParams(paramsFile, args[2:])
			if err != nil {
				return err
			}
			return f.withDevice("TARGET", args[1], func(c *client.Client, target smki.EUI) error {
				ctx := cmd.Context()
				rc, err := c.Send(ctx, args[0], target, params)
				if err != nil {
					return err
				}
				if wait == 0 {
					if f.json {
						return printJSON(cmd.OutOrStdout(), rc)
					}
					fmt.Fprintln(cmd.OutOrStdout(), rc.ID)
					return nil
				}
				wctx, cancel := context.WithTimeout(ctx, wait)
				defer cancel()
				d, err := c.Wait(wctx, rc.ID, 0)
				if err != nil {
					return err
				}
				return printDelivery(cmd.OutOrStdout(), ctx, c, d, f.json)
			})
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&paramsFile, "params", "", "the service request's parameters, a JSON object in a file")
	c.Flags().DurationVar(&wait, "wait", 0, "wait this long for the device's response and print it")
	return c
}

// userParams reads a service request's parameters: a JSON file, or
// PARAM=VALUE arguments (values as strings, or JSON when they parse as
// JSON numbers, booleans, arrays or objects).
func userParams(file string, args []string) (map[string]any, error) {
	if file != "" && len(args) > 0 {
		return nil, fmt.Errorf("give parameters as --params FILE or PARAM=VALUE arguments, not both")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--params: %w", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("--params: %s is not a JSON object: %w", file, err)
		}
		return m, nil
	}
	if len(args) == 0 {
		return nil, nil
	}
	m := map[string]any{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q: want PARAM=VALUE", a)
		}
		var j any
		if json.Unmarshal([]byte(v), &j) == nil && !isString(j) {
			m[k] = j
		} else {
			m[k] = v
		}
	}
	return m, nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

// printDelivery prints a delivery: opened (checked, decrypted) when it
// carries a message and the client can open it, else as it came.
func printDelivery(w io.Writer, ctx context.Context, c *client.Client, d client.Delivery, asJSON bool) error {
	out := map[string]any{"seq": d.Seq, "kind": d.Kind, "commandId": d.CommandID, "at": d.At}
	if d.Detail != "" {
		out["detail"] = d.Detail
	}
	if d.Kind == client.KindAlert && len(d.Body) > 0 {
		return printAlert(w, ctx, c, d, out, asJSON)
	}
	if len(d.Body) > 0 {
		r, err := c.Open(ctx, d.Body)
		if err != nil {
			out["body"], out["openError"] = hex.EncodeToString(d.Body), err.Error()
		} else {
			out["from"], out["messageCode"], out["payload"] = r.Message.Originator.String(), fmt.Sprintf("%04X", uint16(r.Message.Code)), r.Payload
			if plain := r.Decrypted(); plain != nil {
				out["decrypted"] = plain
			}
			if rd, err := r.Readings(); err == nil {
				out["readings"] = rd
			}
		}
	}
	return writeDelivery(w, out, asJSON)
}

// printAlert prints a device alert checked (the device's signature) and
// decoded (its use case's typed reading), with the router's account of it.
func printAlert(w io.Writer, ctx context.Context, c *client.Client, d client.Delivery, out map[string]any, asJSON bool) error {
	out["kind"] = "device-alert"
	if i := d.Alert; i != nil {
		out["device"], out["messageCode"], out["counter"], out["recipient"], out["rerouted"] = i.Device.String(), i.Code, i.Counter, i.Recipient.String(), i.Rerouted
	}
	a, err := c.OpenAlert(ctx, d)
	if err != nil {
		out["verified"], out["body"], out["openError"] = false, hex.EncodeToString(d.Body), err.Error()
		return writeDelivery(w, out, asJSON)
	}
	m := a.Message
	out["verified"], out["from"], out["messageCode"], out["counter"] = true, m.Originator.String(), m.Code.String(), m.Counter
	out["recipient"], out["rerouted"], out["payload"] = m.Recipient.String(), a.Rerouted, a.Payload
	if a.UseCase != nil {
		out["alert"] = a.UseCase
	}
	return writeDelivery(w, out, asJSON)
}

// writeDelivery writes out as one JSON line (asJSON) or indented.
func writeDelivery(w io.Writer, out map[string]any, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func newUserWatchCmd() *cobra.Command {
	var f userFlags
	var since string
	c := &cobra.Command{
		Use:   "watch",
		Short: "Follow the user's responses and alerts as they come, checked and decrypted where the key allows",
		Long: `Follow the router's event stream for the user: device responses, failures,
device alerts and anomaly alerts, one JSON object per line with --json. Each
message is checked (signature or MAC) and decrypted with --decrypt when the
device's certificates can be found in --repository. Reconnects by itself,
from the last event; --since ID starts after that event.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := f.client()
			if err != nil {
				return err
			}
			defer done()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = c.Watch(ctx, since, func(ev client.Event) error {
				if ev.Delivery != nil {
					return printDelivery(cmd.OutOrStdout(), ctx, c, *ev.Delivery, f.json)
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "{\"kind\":\"anomaly-alert\",\"alert\":%s}\n", ev.Alert)
				return err
			})
			if ctx.Err() != nil {
				return nil
			}
			return err
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&since, "since", "", "start after this event ID")
	return c
}

func newUserChangeSupplierCmd() *cobra.Command {
	var f userFlags
	var ds, ka, ppka string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "change-supplier TARGET --ds SERIAL --ka SERIAL --pp-ka SERIAL",
		Short: "As the incoming supplier, take a meter (SR 6.23): the router has its supplier cells replaced with your certificates",
		Long: `Ask for the change of supplier of the meter TARGET (DUIS 6.23). The router checks
that the registration data name you for the meter, and that the three
certificates (by serial number, hex, as the SMKI repository lists them: your
digital-signing, key-agreement and prepayment top-up key-agreement
organisation certificates) are yours and valid; the transitional change of
supplier party then replaces the meter's supplier cells. Ownership moves only
when the meter confirms; while it runs, both suppliers' critical commands for
the meter are refused (ownership-unsettled). Prints the change; with --wait,
waits for its outcome (applied, refused, not-applied or diverged).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withDevice("TARGET", args[0], func(c *client.Client, target smki.EUI) error {
				ctx := cmd.Context()
				ch, err := c.ChangeSupplier(ctx, target, ds, ka, ppka)
				if err != nil {
					return err
				}
				if wait > 0 {
					wctx, cancel := context.WithTimeout(ctx, wait)
					defer cancel()
					if ch, err = c.WaitChange(wctx, ch.ID); err != nil {
						return err
					}
				}
				return printJSON(cmd.OutOrStdout(), ch)
			})
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&ds, "ds", "", "serial (hex) of your digital-signing certificate (required)")
	c.Flags().StringVar(&ka, "ka", "", "serial (hex) of your key-agreement certificate (required)")
	c.Flags().StringVar(&ppka, "pp-ka", "", "serial (hex) of your prepayment top-up key-agreement certificate (required)")
	c.Flags().DurationVar(&wait, "wait", 0, "wait this long for the outcome")
	for _, n := range []string{"ds", "ka", "pp-ka"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newUserRotateKeysCmd() *cobra.Command {
	var f userFlags
	var r client.RotateRequest
	var executeAt string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "rotate-keys TARGET --signer KEYURI --ds SERIAL --ka SERIAL [--prepayment-ka SERIAL]",
		Short: "As the meter's supplier or network operator, replace your keys on it (SR 6.15.1)",
		Long: `Replace your own trust anchors on the meter TARGET (DUIS 6.15.1): the router
builds a CS02b (supplierBySupplier for a supplier, networkOperatorByNetworkOperator
for a network operator) installing the certificates given by serial number
(hex, as the SMKI repository lists them: digital-signing, key-agreement and,
for a supplier, prepayment top-up key-agreement), this command checks it and
signs it with --signer, your CURRENT digital-signing key (the one the meter
holds), and the router records the change before it sends it. While it runs
your critical commands for the meter are refused (ownership-unsettled); once
applied, sign with the new key. --execute-at (RFC 3339, at most 24 hours ahead)
dates the CS02b. Prints the change; with --wait, waits for its outcome
(applied, refused, not-applied or diverged).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if executeAt != "" {
				t, err := time.Parse(time.RFC3339, executeAt)
				if err != nil {
					return fmt.Errorf("--execute-at: %w", err)
				}
				r.ExecuteAt = t
			}
			return f.withDevice("TARGET", args[0], func(c *client.Client, target smki.EUI) error {
				ctx := cmd.Context()
				ch, err := c.RotateKeys(ctx, target, r)
				if err != nil {
					return err
				}
				if wait > 0 {
					wctx, cancel := context.WithTimeout(ctx, wait)
					defer cancel()
					if ch, err = c.WaitRotation(wctx, ch.CommandID); err != nil {
						return err
					}
				}
				if f.json {
					return printJSON(cmd.OutOrStdout(), ch)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "rotation %s of %s on %s: %s (new DS key %s)\n", ch.CommandID, ch.NewOwner, ch.Target, ch.State, ch.DSKeyID)
				return err
			})
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&r.DS, "ds", "", "serial (hex) of your new digital-signing certificate (required)")
	c.Flags().StringVar(&r.KA, "ka", "", "serial (hex) of your new key-agreement certificate (required)")
	c.Flags().StringVar(&r.PrepaymentKA, "prepayment-ka", "", "serial (hex) of your new prepayment top-up key-agreement certificate (suppliers)")
	c.Flags().StringVar(&executeAt, "execute-at", "", "date the CS02b: the meter replaces the keys at this time (RFC 3339)")
	c.Flags().DurationVar(&wait, "wait", 0, "wait this long for the outcome")
	for _, n := range []string{"ds", "ka", "signer"} {
		c.MarkFlagRequired(n)
	}
	return c
}
