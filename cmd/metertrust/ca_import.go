package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// inventoryLine is one line of the --out inventory: one issued certificate.
type inventoryLine struct {
	EUI         string `json:"eui"`
	Usage       string `json:"usage"`
	CA          string `json:"ca"`
	Serial      string `json:"serial"`
	Certificate string `json:"certificate"` // PEM
}

// importOutput is what "ca import --json" prints.
type importOutput struct {
	ca.ImportSummary
	// Refused are the file's device lines refused with --skip-bad.
	Refused []*provision.EntryError `json:"refused,omitempty"`
	Out     string                  `json:"out,omitempty"`
}

func newCAImportCmd() *cobra.Command {
	var f caFlags
	var batch, file, sigPath, certPath, mfr, out string
	var skipBad bool
	var workers, chunk int
	c := &cobra.Command{
		Use:   "import",
		Short: "Issue the device certificates of a manufacturer's signed provisioning file (docs/provisioning.md)",
		Long: `Check a manufacturer's provisioning file (JSON Lines: a header, then one device
per line with a request per key) and its detached signature against the
manufacturer's digital-signing organisation certificate, check every device
against the inventory and the batch's remaining quota, then issue every request
from the batch and write the inventory of issued certificates. Nothing is
issued from a file that fails any check, unless --skip-bad, which skips the bad
device lines and the devices already in the inventory (a bad header or
signature still refuses the whole file).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if (certPath == "") == (mfr == "") {
				return fmt.Errorf("give the manufacturer's certificate with exactly one of --manufacturer-cert and --manufacturer")
			}
			var mfrEUI smki.EUI
			if mfr != "" {
				var err error
				if mfrEUI, err = smki.ParseEUI(mfr); err != nil {
					return fmt.Errorf("--manufacturer: %w", err)
				}
			}
			if sigPath == "" {
				sigPath = file + ".sig"
			}
			if err := checkNew(out); err != nil {
				return err
			}
			data, err := readBounded(file, provision.DefaultMaxBytes)
			if err != nil {
				return err
			}
			sig, err := readBounded(sigPath, 4096)
			if err != nil {
				return err
			}
			var certDER []byte
			if certPath != "" {
				if certDER, err = readBounded(certPath, 1<<20); err != nil {
					return err
				}
			}
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			cert, err := e.auth.SignerCertificate(ctx, certDER, mfrEUI)
			if err != nil {
				return fmt.Errorf("manufacturer certificate: %w", err)
			}
			pf, err := provision.Open(data, sig, cert, provision.Options{SkipBad: skipBad})
			if err != nil {
				return fmt.Errorf("%s refused: %w", file, err)
			}
			req := ca.ImportRequest{Batch: batch, Manufacturer: pf.Header.Manufacturer, FileSHA256: hex.EncodeToString(pf.SHA256[:]),
				SkipBad: skipBad, Workers: workers, Chunk: chunk}
			for _, en := range pf.Entries {
				req.Devices = append(req.Devices, ca.ImportDevice{EUI: en.EUI, Line: en.Line, CSRs: en.CSRs})
			}
			inv := &inventory{path: out}
			defer inv.close()
			if out != "" {
				req.Stored = inv.write
			}
			if w, ok := terminal(cmd.ErrOrStderr()); ok && !f.json {
				bar := &progressBar{w: w, start: time.Now()}
				req.Progress = bar.update
				defer bar.finish()
			}
			sum, err := e.auth.ImportDevices(ctx, req)
			if err == nil {
				err = inv.close()
			}
			if err != nil {
				if sum.Devices > 0 {
					return fmt.Errorf("%s: after %d devices: %w", file, sum.Devices, err)
				}
				return fmt.Errorf("%s refused: %w", file, err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), importOutput{ImportSummary: sum, Refused: pf.Refused, Out: out})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "imported %d devices (%d certificates) of manufacturer %s from batch %s in %s",
				sum.Devices, sum.Certificates, sum.Manufacturer, sum.Batch, sum.Elapsed.Round(time.Millisecond))
			if sum.Devices > 0 {
				fmt.Fprintf(w, ", EUIs %s to %s", sum.FirstEUI, sum.LastEUI)
			}
			if out != "" {
				fmt.Fprintf(w, ", inventory in %s", out)
			}
			fmt.Fprintln(w)
			for _, r := range pf.Refused {
				fmt.Fprintf(w, "refused line %d (%s): %v\n", r.Line, r.EUI, r.Err)
			}
			for _, s := range sum.Skipped {
				fmt.Fprintf(w, "skipped line %d (%s): %s\n", s.Line, s.EUI, s.Reason)
			}
			if sum.BatchClosed {
				fmt.Fprintf(w, "batch %s reached its quota: closed, key destroyed\n", sum.Batch)
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&batch, "batch", "", "batch id to issue from (required)")
	c.Flags().StringVar(&file, "file", "", "provisioning file, JSON Lines (required)")
	c.Flags().StringVar(&sigPath, "sig", "", "detached signature, base64 of the DER ECDSA signature (default FILE.sig)")
	c.Flags().StringVar(&certPath, "manufacturer-cert", "", "the manufacturer's digital-signing organisation certificate, PEM or DER")
	c.Flags().StringVar(&mfr, "manufacturer", "", "or its EUI-64: the newest unrevoked DS organisation certificate of that EUI in the store")
	c.Flags().BoolVar(&skipBad, "skip-bad", false, "skip bad device lines and devices already in the inventory instead of refusing the file")
	c.Flags().StringVar(&out, "out", "", "inventory output, JSON Lines: one line per issued certificate (eui, usage, ca, serial, certificate PEM)")
	c.Flags().IntVar(&workers, "workers", 0, "signing goroutines (default GOMAXPROCS)")
	c.Flags().IntVar(&chunk, "chunk", 0, "devices per store transaction (default 256)")
	c.MarkFlagRequired("batch")
	c.MarkFlagRequired("file")
	return c
}

// readBounded reads a file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// inventory writes the --out file, created (never overwritten) when the
// first chunk is stored, so a refused import leaves none.
type inventory struct {
	path string
	fh   *os.File
	w    *bufio.Writer
	enc  *json.Encoder
}

func (v *inventory) write(recs []store.Certificate) error {
	if v.fh == nil {
		fh, err := os.OpenFile(v.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		v.fh, v.w = fh, bufio.NewWriter(fh)
		v.enc = json.NewEncoder(v.w)
	}
	for _, r := range recs {
		l := inventoryLine{EUI: r.EUI, Usage: r.Usage, CA: r.CA, Serial: strings.ToUpper(hex.EncodeToString(r.Serial)),
			Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.DER}))}
		if err := v.enc.Encode(l); err != nil {
			return fmt.Errorf("inventory %s: %w", v.path, err)
		}
	}
	return nil
}

func (v *inventory) close() error {
	if v.fh == nil {
		return nil
	}
	fh := v.fh
	v.fh = nil
	err := v.w.Flush()
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("inventory %s: %w", v.path, err)
	}
	return nil
}
