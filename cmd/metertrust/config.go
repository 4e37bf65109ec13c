package main

import "github.com/spf13/cobra"

// overlay applies a command's flags over the configuration read from
// --config: for each flag named in fields, a flag given on the command line
// (Changed) replaces the file's value, and a field the file left empty takes
// the flag's value (its default when not given). fields maps a flag's name
// to the pair (flag variable, file field).
func overlay(cmd *cobra.Command, fields map[string][2]*string) {
	for name, p := range fields {
		if cmd.Flags().Changed(name) || *p[1] == "" {
			*p[1] = *p[0]
		}
	}
}

// overlaySlice is overlay for repeatable flags.
func overlaySlice(cmd *cobra.Command, fields map[string][2]*[]string) {
	for name, p := range fields {
		if cmd.Flags().Changed(name) || len(*p[1]) == 0 {
			*p[1] = *p[0]
		}
	}
}
