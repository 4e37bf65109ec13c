package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

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

// serveConfig is a service's configuration struct (router.ServeConfig,
// device.ServeConfig, operator.ServeConfig).
type serveConfig[C any] interface {
	WithDefaults() C
	Validate() error
}

// loadServeConfig reads a service's configuration: the file's (when file is
// not empty, read by load), with apply laying the command's flags over it
// (overlay), then its defaults, validated before anything starts. Errors
// name the file.
func loadServeConfig[C serveConfig[C]](file string, load func(string) (C, error), apply func(cfg *C)) (C, error) {
	var cfg, zero C
	if file != "" {
		var err error
		if cfg, err = load(file); err != nil {
			return zero, err
		}
	}
	apply(&cfg)
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		if file != "" {
			return zero, fmt.Errorf("%s: %w", file, err)
		}
		return zero, err
	}
	return cfg, nil
}
