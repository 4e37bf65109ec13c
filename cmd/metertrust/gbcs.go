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
	c.AddCommand(newGBCSInspectCmd(), newGBCSEncodeCmd(), newGBCSVerifyCmd(), newGBCSSignCmd(), newGBCSMACCmd(), newGBCSDecryptCmd())
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
	fmt.Fprintf(out, "%s: %s %s, %s form", file, s.CRA, s.MessageCode, s.Form)
	if s.UseCase != "" {
		fmt.Fprintf(out, " %s (%s)", s.UseCase, s.Title)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  originator %s  recipient %s  counter %d\n", s.Originator, s.Recipient, s.Counter)
	if s.DateTime != "" {
		fmt.Fprintf(out, "  date-time %s %s\n", s.DateTime, s.Time)
	}
	if o := s.OtherInformation; o.SRP != nil {
		fmt.Fprintf(out, "  other-information form %d: supplementary remote party %s", o.Form, *o.SRP)
		if o.SRPCounter != nil {
			fmt.Fprintf(out, " counter %d", *o.SRPCounter)
		}
		if o.OriginatorCounter != nil {
			fmt.Fprintf(out, " supplementary originator counter %d", *o.OriginatorCounter)
		}
		if o.KACertificate != "" {
			fmt.Fprintf(out, " KA certificate %d bytes", len(o.KACertificate)/2)
		}
		fmt.Fprintln(out)
	}
	if s.Lengths != nil {
		fmt.Fprintf(out, "  non-minimal framing lengths %+v\n", *s.Lengths)
	}
	fmt.Fprintf(out, "  critical %t  pre-command %t  signed %t  MAC header %t  payload %d bytes", s.Critical, s.PreCommand, s.Signed, s.MACed, s.PayloadLen)
	if s.Encrypted {
		fmt.Fprint(out, " (encrypted)")
	}
	fmt.Fprintln(out)
	p := s.Payload
	if !p.Decoded {
		fmt.Fprintf(out, "  payload (%s) does not decode: %s\n", p.Structure, p.Error)
		return
	}
	fmt.Fprintf(out, "  payload %s\n", p.Structure)
	if b, err := json.Marshal(p.Tree); err == nil {
		fmt.Fprintf(out, "    tree %s\n", b)
	}
	switch {
	case p.UseCase != nil:
		if b, err := json.Marshal(p.UseCase); err == nil {
			fmt.Fprintf(out, "    use case %s\n", b)
		}
	case p.UseCaseError != "":
		fmt.Fprintf(out, "    does not fit its use case: %s\n", p.UseCaseError)
	}
}

type inspected struct {
	File string `json:"file"`
	commands.Summary
	// Decrypted holds the plaintexts of the payload's ciphered blocks, in
	// hex, when --keystore held a key for them.
	Decrypted []string `json:"decrypted,omitempty"`
	// DecryptError says why an encrypted payload was not decrypted.
	DecryptError string `json:"decrypt_error,omitempty"`
}

func newGBCSInspectCmd() *cobra.Command {
	var (
		asJSON bool
		dir    string
	)
	c := &cobra.Command{
		Use:   "inspect [--json] [--keystore DIR] FILE...",
		Short: "Print GBCS messages: form, header, other-information and the decoded payload",
		Long: "inspect prints, for each message, its form (pre-command, signed, mac, mac+signed), its header, " +
			"the form of its other-information and, for the payload, its structure (ASN.1, DLMS, GBZ) and its " +
			"decoded tree, with the typed reading of the use case where the spec details it. With --keystore " +
			"it also decrypts the payload's ciphered blocks when the keystore holds a key for them. " +
			"--json prints an array whose objects gbcs encode reads back. The exit status is 1 if any " +
			"message does not parse.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ks *keystore.Dir
			if dir != "" {
				var err error
				if ks, err = keystore.Open(dir); err != nil {
					return err
				}
			}
			var all []inspected
			var failed []error
			for _, f := range args {
				m, err := readMessage(cmd.InOrStdin(), f)
				if err != nil {
					failed = append(failed, err)
					continue
				}
				in := inspected{File: f, Summary: commands.Summarize(m)}
				if ks != nil && in.Encrypted {
					pts, err := commands.Decrypt(cmd.Context(), ks, m)
					if err != nil {
						in.DecryptError = err.Error()
					}
					for _, p := range pts {
						in.Decrypted = append(in.Decrypted, hex.EncodeToString(p))
					}
				}
				all = append(all, in)
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), all); err != nil {
					return err
				}
			} else {
				for _, s := range all {
					printSummary(cmd.OutOrStdout(), s.File, s.Summary)
					fmt.Fprintf(cmd.OutOrStdout(), "  payload hex %s\n", s.Payload.Hex)
					for i, p := range s.Decrypted {
						fmt.Fprintf(cmd.OutOrStdout(), "  decrypted block %d: %s\n", i, p)
					}
					if s.DecryptError != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "  not decrypted: %s\n", s.DecryptError)
					}
				}
			}
			if len(failed) > 0 {
				return &exitStatus{code: 1, err: errors.Join(failed...)}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array (gbcs encode reads its objects)")
	c.Flags().StringVar(&dir, "keystore", "", "keystore directory: decrypt ciphered blocks it holds a key for")
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
	Plaintexts []string `json:"plaintexts"`
}

func newGBCSDecryptCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "decrypt --keystore DIR [--json] FILE",
		Short: "Decrypt the sensitive payload of a message; print each ciphered block's plaintext as hex, one a line",
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
			pts, err := commands.Decrypt(cmd.Context(), ks, m)
			if err != nil {
				return err
			}
			if asJSON {
				d := decrypted{File: args[0], Summary: commands.Summarize(m)}
				for _, p := range pts {
					d.Plaintexts = append(d.Plaintexts, hex.EncodeToString(p))
				}
				return writeJSON(cmd.OutOrStdout(), d)
			}
			for _, p := range pts {
				if _, err := fmt.Fprintf(cmd.OutOrStdout(), "%X\n", p); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "keystore", "", "keystore directory")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("keystore")
	return c
}

func newGBCSEncodeCmd() *cobra.Command {
	var (
		dir, signer, acb string
		mac              bool
	)
	c := &cobra.Command{
		Use:   "encode [--keystore DIR [--sign EUI] [--mac --acb EUI]] FILE",
		Short: "Rebuild a GBCS message from gbcs inspect --json output, possibly edited; print it as hex",
		Long: "encode reads one message as gbcs inspect --json prints it (the object, or an array of one), " +
			"possibly edited by hand, and prints the message as hex. Unedited, it reproduces the original " +
			"bytes exactly, lengths in the form they were read. The payload is rebuilt from its tree when the " +
			"JSON says it was decoded (so edit the tree), from its hex otherwise; the lengths around what " +
			"changed are recomputed. A signature or MAC is copied as given and no longer matches an edited " +
			"message: --sign EUI re-signs with that party's DS key, --mac (with --acb) recomputes the ACB's " +
			"MAC of a command, both from --keystore.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b []byte
			var err error
			if args[0] == "-" {
				b, err = io.ReadAll(cmd.InOrStdin())
			} else {
				b, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", args[0], err)
			}
			m, err := commands.MessageFromJSON(b)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if signer == "" && !mac {
				return printHex(cmd.OutOrStdout(), m)
			}
			if dir == "" {
				return errors.New("--sign and --mac need --keystore")
			}
			ks, err := keystore.Open(dir)
			if err != nil {
				return err
			}
			if signer != "" {
				eui, err := smki.ParseEUI(signer)
				if err != nil {
					return fmt.Errorf("--sign: %w", err)
				}
				key, err := ks.Signer(eui)
				if err != nil {
					return err
				}
				if m.HasMAC() && !mac {
					return errors.New("the message has a MAC, which re-signing invalidates: add --mac --acb EUI")
				}
				if err := commands.Sign(rand.Reader, key, m); err != nil {
					return err
				}
			}
			if mac {
				eui, err := smki.ParseEUI(acb)
				if err != nil {
					return fmt.Errorf("--acb: %w", err)
				}
				m.MAC = nil
				if err := commands.MACCommand(cmd.Context(), ks, eui, m); err != nil {
					return err
				}
			}
			return printHex(cmd.OutOrStdout(), m)
		},
	}
	c.Flags().StringVar(&dir, "keystore", "", "keystore directory (for --sign and --mac)")
	c.Flags().StringVar(&signer, "sign", "", "re-sign with this party's DS private key")
	c.Flags().BoolVar(&mac, "mac", false, "recompute the access control broker's MAC (a command)")
	c.Flags().StringVar(&acb, "acb", "", "EUI of the access control broker whose KA key MACs (with --mac)")
	return c
}
