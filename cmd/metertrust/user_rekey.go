package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/smki"
)

// rekeyIssuer adapts the registration service's client to
// client.RekeyIssuer.
type rekeyIssuer struct {
	ra    *ra.Client
	batch string
}

func (r rekeyIssuer) IssueRekey(ctx context.Context, response []byte) ([]byte, error) {
	v, err := r.ra.SubmitRekey(ctx, r.batch, response)
	if err != nil {
		return nil, err
	}
	return pemCertificate(v.Certificate)
}

func (r rekeyIssuer) ConfirmRekey(ctx context.Context, response []byte) error {
	_, err := r.ra.ConfirmRekey(ctx, response)
	return err
}

// pemCertificate returns the DER of a PEM CERTIFICATE block.
func pemCertificate(s string) ([]byte, error) {
	certs, err := smki.ParseCertificates([]byte(s))
	if err != nil || len(certs) != 1 {
		return nil, fmt.Errorf("the registration service's certificate: %v", err)
	}
	return certs[0].Raw, nil
}

func newUserRekeyDeviceCmd() *cobra.Command {
	var f userFlags
	var caURL, usage, batch string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "rekey-device TARGET --ca URL --batch NAME --usage ds|ka",
		Short: "As the device's supplier, re-key a meter's digital-signing or key-agreement key (SR 6.17, 6.15.2, 6.24.2; decision 017)",
		Long: `Re-key the meter TARGET: the meter makes a new key pair (6.17, CS02c) and
answers with a certification request, signed; the SMKI registration service
(--ca, the same DCCKI client certificate) issues it from --batch, a batch
opened for re-keys; the meter installs the certificate (6.15.2, CS02d), the
router's registry switching to the new key when the meter confirms; the
certificate is read back (6.24.2, CS02e) and handed to the registration
service, which revokes the superseded one. Waits up to --wait for each answer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if caURL == "" {
				return fmt.Errorf("--ca is required")
			}
			if usage != "ds" && usage != "ka" {
				return fmt.Errorf("--usage %q: want ds or ka", usage)
			}
			if f.signer == "" {
				return fmt.Errorf("--signer is required: CS02c, CS02d and CS02e are critical")
			}
			rc, err := f.raClient(caURL)
			if err != nil {
				return err
			}
			return f.withDevice("TARGET", args[0], func(c *client.Client, target smki.EUI) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), wait)
				defer cancel()
				out, err := c.RekeyDevice(ctx, target, usage, rekeyIssuer{ra: rc, batch: batch})
				if err != nil {
					return err
				}
				if f.json {
					return printJSON(cmd.OutOrStdout(), out)
				}
				cert, _ := smki.ParseCertificate(out.Certificate)
				fmt.Fprintf(cmd.OutOrStdout(), "device %s re-keyed (%s): certificate serial %X installed; commands %v\n",
					target, usage, cert.SerialNumber, out.Commands)
				return nil
			})
		},
	}
	f.register(c, true)
	fl := c.Flags()
	fl.StringVar(&caURL, "ca", envOr("METERTRUST_CA_URL", ""), "the SMKI registration service, https://host:port (default $METERTRUST_CA_URL)")
	fl.StringVar(&usage, "usage", "", "the key to replace: ds or ka (required)")
	fl.StringVar(&batch, "batch", "", "the device CA batch opened for re-keys to issue from (required)")
	fl.DurationVar(&wait, "wait", 2*time.Minute, "how long the whole re-key may take")
	c.MarkFlagRequired("usage")
	c.MarkFlagRequired("batch")
	return c
}

// raClient returns the registration service's client with the user's
// DCCKI client certificate (an organisation's routes: no operator token).
func (f *userFlags) raClient(url string) (*ra.Client, error) {
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
	return ra.NewClient(url, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{kp}}, "")
}
