// Command metertrust is the one binary of metertrust: certificate
// authorities, the GBCS tools, the router, the reference meter and the demo.
// Each subcommand only parses flags, wires dependencies and calls into the
// packages that do the work.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "metertrust:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "metertrust",
		Short:         "GB-compatible smart-metering trust infrastructure",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	serve := &cobra.Command{Use: "serve", Short: "Run a metertrust service"}
	serve.AddCommand(newServeRepositoryCmd(), newServeRouterCmd(), newServeOperatorCmd(), newServeCACmd(), newServeFleetCmd(), newServeAllCmd())
	root.AddCommand(
		newCACmd(),
		newKeysCmd(),
		newSMKICmd(),
		newAuditCmd(),
		newGBCSCmd(),
		newUserCmd(),
		newThirdPartyCmd(),
		newDemoCmd(),
		newRouterCmd(),
		newOperatorCmd(),
		newBenchCmd(),
		newConformanceCmd(),
		serve,
	)
	return root
}

// exitStatus is an error that asks for a particular process exit code, for
// commands such as "gbcs verify" whose exit code carries a verdict.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string { return e.err.Error() }
func (e *exitStatus) Unwrap() error { return e.err }

func exitCode(err error) int {
	if es, ok := err.(*exitStatus); ok {
		return es.code
	}
	return 1
}
