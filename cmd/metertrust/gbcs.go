package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/keystore"
	"github.com/metertrust/metertrust/smki"
)

// newGBCSCmd groups the tools that read, check, sign, MAC and decrypt GBCS
// messages.
func newGBCSCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "gbcs",
		Short: "Inspect, verify, sign, MAC and decrypt GBCS messages",
		Long: "gbcs works on GBCS messages given as FILE arguments: hex text (whitespace allowed) " +
			"or raw bytes; '-' reads standard input. Keys come from a keystore directory holding " +
			"<EUI>-ds.pem, <EUI>-ka.pem, <EUI>-pp-ka.pem (certificates or public keys) and the " +
			"matching .key private key files (PKCS#8 or SEC 1).",
	}
	c.AddCommand(newGBCSInspectCmd(), newGBCSVerifyCmd(), newGBCSSignCmd(), newGBCSMACCmd(), newGBCSDecryptCmd())
	return c
}

// readMessageFile reads FILE ('-' is stdin) and decodes hex text when the
// content is only hex digits and whitespace; anything else is raw bytes.
func readMessageFile(stdin io.Reader, name string) ([]byte, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	isHex := len(bytes.TrimSpace(data)) > 0
	for _, c := range data {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == ' ', c == '\t', c == '\n', c == '\r':
		default:
			isHex = false
		}
		if !isHex {
			break
		}
	}
	if !isHex {
		return data, nil
	}
	compact := bytes.Join(bytes.Fields(data), nil)
	out := make([]byte, hex.DecodedLen(len(compact)))
	if _, err := hex.Decode(out, compact); err != nil {
		return nil, fmt.Errorf("%s: hex text: %w", name, err)
	}
	return out, nil
}

func readMessage(stdin io.Reader, name string) (*commands.Message, error) {
	b, err := readMessageFile(stdin, name)
	if err != nil {
		return nil, err
	}
	m, err := commands.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printSummary(out io.Writer, file string, s commands.Summary) {
	fmt.Fprintf(out, "%s: %s %s", file, s.CRA, s.MessageCode)
	if s.UseCase != "" {
		fmt.Fprintf(out, " %s (%s)", s.UseCase, s.Title)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  originator %s  recipient %s  counter %d\n", s.Originator, s.Recipient, s.Counter)
	if s.DateTime != "" {
		fmt.Fprintf(out, "  date-time %s %s\n", s.DateTime, s.Time)
	}
	if s.URP != nil {
		fmt.Fprintf(out, "  unknown remote party %s counter %d", s.URP.EUI, s.URP.Counter)
		if s.URP.CertificateLen > 0 {
			fmt.Fprintf(out, " KA certificate %d bytes", s.URP.CertificateLen)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "  critical %t  pre-command %t  signed %t  MAC header %t  payload %d bytes", s.Critical, s.PreCommand, s.Signed, s.MACed, s.PayloadLen)
	if s.Encrypted {
		fmt.Fprint(out, " (encrypted)")
	}
	fmt.Fprintln(out)
	if s.Decoded != nil {
		if b, err := json.Marshal(s.Decoded); err == nil {
			fmt.Fprintf(out, "  payload decoded %s\n", b)
		}
	}
	if s.DecodeError != "" {
		fmt.Fprintf(out, "  payload does not decode: %s\n", s.DecodeError)
	}
}

type inspected struct {
	File string `json:"file"`
	commands.Summary
}

func newGBCSInspectCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect [--json] FILE...",
		Short: "Print the header fields of GBCS messages",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []inspected
			var failed []error
			for _, f := range args {
				m, err := readMessage(cmd.InOrStdin(), f)
				if err != nil {
					failed = append(failed, err)
					continue
				}
				all = append(all, inspected{File: f, Summary: commands.Summarize(m)})
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), all); err != nil {
					return err
				}
			} else {
				for _, s := range all {
					printSummary(cmd.OutOrStdout(), s.File, s.Summary)
					fmt.Fprintf(cmd.OutOrStdout(), "  payload %s\n", s.Payload)
				}
			}
			return errors.Join(failed...)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

type verified struct {
	File  string `json:"file"`
	Error string `json:"error,omitempty"`
	*commands.Report
}

func newGBCSVerifyCmd() *cobra.Command {
	var (
		dir, acb, at string
		asJSON       bool
	)
	c := &cobra.Command{
		Use:   "verify --keystore DIR [--acb EUI] [--at RFC3339] [--json] FILE...",
		Short: "Check the signature and MAC of GBCS messages; exit 1 if any is invalid",
		Long: "verify reports, for each message, its header fields, then its signature and its MAC, " +
			"each as valid, invalid, absent or no-key. A command's MAC is checked with the ACB's " +
			"key-agreement private key (or the device's, whichever the keystore holds); a response's " +
			"or alert's with the recipient's (or the device's). --at checks certificates' validity at " +
			"that time. The exit status is 1 if any check is invalid or a file does not parse.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := keystore.Open(dir)
			if err != nil {
				return err
			}
			if at != "" {
				if ks.At, err = time.Parse(time.RFC3339, at); err != nil {
					return fmt.Errorf("--at: %w", err)
				}
			}
			var acbEUI *smki.EUI
			if acb != "" {
				e, err := smki.ParseEUI(acb)
				if err != nil {
					return fmt.Errorf("--acb: %w", err)
				}
				acbEUI = &e
			}
			out := cmd.OutOrStdout()
			var results []verified
			bad := 0
			for _, f := range args {
				m, err := readMessage(cmd.InOrStdin(), f)
				if err != nil {
					bad++
					results = append(results, verified{File: f, Error: err.Error()})
					continue
				}
				r := commands.Check(cmd.Context(), ks, m, acbEUI)
				if r.Invalid() {
					bad++
				}
				results = append(results, verified{File: f, Report: &r})
			}
			if asJSON {
				if err := writeJSON(out, results); err != nil {
					return err
				}
			} else {
				for _, v := range results {
					if v.Report == nil {
						fmt.Fprintf(out, "%s: %s\n", v.File, v.Error)
						continue
					}
					printSummary(out, v.File, v.Summary)
					fmt.Fprintf(out, "  signature: %s%s\n", v.SignatureVerdict, reason(v.SignatureReason))
					fmt.Fprintf(out, "  mac: %s%s\n", v.MACVerdict, reason(v.MACReason))
				}
			}
			if bad > 0 {
				return &exitStatus{code: 1, err: fmt.Errorf("%d of %d messages failed verification", bad, len(args))}
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "keystore", "", "keystore directory")
	c.Flags().StringVar(&acb, "acb", "", "EUI of the access control broker (for commands' MACs)")
	c.Flags().StringVar(&at, "at", "", "check certificate validity at this RFC 3339 time")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	_ = c.MarkFlagRequired("keystore")
	return c
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func printHex(out io.Writer, m *commands.Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%X\n", b)
	return err
}

func newGBCSSignCmd() *cobra.Command {
	var dir, signer string
	c := &cobra.Command{
		Use:   "sign --keystore DIR --signer EUI FILE",
		Short: "Sign a pre-command with the signer's DS key; print the signed message as hex",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := keystore.Open(dir)
			if err != nil {
				return err
			}
			eui, err := smki.ParseEUI(signer)
			if err != nil {
				return fmt.Errorf("--signer: %w", err)
			}
			m, err := readMessage(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			key, err := ks.Signer(eui)
			if err != nil {
				return err
			}
			if err := commands.SignPreCommand(rand.Reader, key, m); err != nil {
				return err
			}
			return printHex(cmd.OutOrStdout(), m)
		},
	}
	c.Flags().StringVar(&dir, "keystore", "", "keystore directory")
	c.Flags().StringVar(&signer, "signer", "", "EUI whose DS private key signs")
	_ = c.MarkFlagRequired("keystore")
	_ = c.MarkFlagRequired("signer")
	return c
}

func newGBCSMACCmd() *cobra.Command {
	var dir, acb string
	c := &cobra.Command{
		Use:   "mac --keystore DIR --acb EUI FILE",
		Short: "MAC a signed pre-command or an unsigned command as the ACB; print it as hex",
		Long: "mac adds the MAC header and MAC to a command, with the ACB's key-agreement private key " +
			"and the recipient device's key-agreement public key. A critical command must be signed first.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := keystore.Open(dir)
			if err != nil {
				return err
			}
			eui, err := smki.ParseEUI(acb)
			if err != nil {
				return fmt.Errorf("--acb: %w", err)
			}
			m, err := readMessage(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			if err := commands.MACCommand(cmd.Context(), ks, eui, m); err != nil {
				return err
			}
			return printHex(cmd.OutOrStdout(), m)
		},
	}
	c.Flags().StringVar(&dir, "keystore", "", "keystore directory")
	c.Flags().StringVar(&acb, "acb", "", "EUI of the access control broker whose KA key MACs")
	_ = c.MarkFlagRequired("keystore")
	_ = c.MarkFlagRequired("acb")
	return c
}

type decrypted struct {
	File string `json:"file"`
	commands.Summary
	Plaintext string `json:"plaintext"`
}

func newGBCSDecryptCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "decrypt --keystore DIR [--json] FILE",
		Short: "Decrypt the sensitive payload of a message; print the plaintext as hex",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := keystore.Open(dir)
			if err != nil {
				return err
			}
			m, err := readMessage(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			pt, err := commands.Decrypt(cmd.Context(), ks, m)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), decrypted{File: args[0], Summary: commands.Summarize(m), Plaintext: hex.EncodeToString(pt)})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%X\n", pt)
			return err
		},
	}
	c.Flags().StringVar(&dir, "keystore", "", "keystore directory")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("keystore")
	return c
}
