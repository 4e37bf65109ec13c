package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
)

func newCAIssueDevicesCmd() *cobra.Command {
	var f caFlags
	var batch, out, first string
	var count, workers, chunk int
	c := &cobra.Command{
		Use:   "devices",
		Short: "Bulk: generate N simulated devices (DS and KA keys and certificates each) from a batch",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			req := ca.BulkRequest{Batch: batch, Count: count, OutDir: out, Workers: workers, Chunk: chunk}
			if first != "" {
				e64, err := smki.ParseEUI(first)
				if err != nil {
					return err
				}
				req.FirstEUI = e64
			}
			e, err := openCAEnv(ctx, cmd, &f, false)
			if err != nil {
				return err
			}
			defer e.Close()
			if w, ok := terminal(cmd.ErrOrStderr()); ok && !f.json {
				bar := &progressBar{w: w, start: time.Now()}
				req.Progress = bar.update
				defer bar.finish()
			}
			sum, err := e.auth.IssueDevices(ctx, req)
			if err != nil {
				return fmt.Errorf("after %d devices: %w", sum.Devices, err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), sum)
			}
			rate := float64(sum.Certificates) / sum.Elapsed.Seconds()
			fmt.Fprintf(cmd.OutOrStdout(), "issued %d devices (%d certificates) from batch %s in %s (%.0f certificates/s), EUIs %s to %s",
				sum.Devices, sum.Certificates, sum.Batch, sum.Elapsed.Round(time.Millisecond), rate, sum.FirstEUI, sum.LastEUI)
			if out != "" {
				fmt.Fprintf(cmd.OutOrStdout(), ", keys in %s", out)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			if sum.BatchClosed {
				fmt.Fprintf(cmd.OutOrStdout(), "batch %s reached its quota: closed, key destroyed\n", sum.Batch)
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&batch, "batch", "", "batch id (required)")
	c.Flags().IntVar(&count, "count", 0, "number of devices; each gets a DS and a KA certificate (required)")
	c.Flags().StringVar(&out, "out", "", "directory for <EUI>-ds.pem and <EUI>-ka.pem (key and certificate); empty keeps no keys")
	c.Flags().StringVar(&first, "first-eui", "", "EUI-64 of the first device (default F0-00-00-00-00-00-00-01 + devices already issued)")
	c.Flags().IntVar(&workers, "workers", 0, "signing goroutines (default GOMAXPROCS)")
	c.Flags().IntVar(&chunk, "chunk", 0, "devices per store transaction (default 256)")
	c.MarkFlagRequired("batch")
	c.MarkFlagRequired("count")
	return c
}

// terminal reports whether w is a terminal (for the progress bar).
func terminal(w io.Writer) (*os.File, bool) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return f, true
}

// progressBar draws a one-line bar on a terminal.
type progressBar struct {
	w     io.Writer
	start time.Time
	drawn bool
}

func (p *progressBar) update(done, total int) {
	const width = 40
	n := width * done / total
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d devices %.0f/s", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total, rate)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
