package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// overlay lays a command's flags over the configuration read from --config.
// The flags are bound to the fields of flags, a value of the configuration's
// own type; each flag names its field by the field's JSON name with the
// dashes dropped, in any case ("tls-cert" is tlsCert, "acb-eui" acbEUI). A
// flag given on the command line (Changed) replaces the file's value, and a
// field the file left empty takes the flag's value (its default when not
// given). Flags without a field (--config) are left alone.
func overlay[C any](cmd *cobra.Command, flags, cfg *C) {
	from, to := reflect.ValueOf(flags).Elem(), reflect.ValueOf(cfg).Elem()
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		i, ok := flagField(to.Type(), fl.Name)
		if !ok {
			return
		}
		if fl.Changed || to.Field(i).IsZero() {
			to.Field(i).Set(from.Field(i))
		}
	})
}

// flagField returns the index of the field of struct type t whose JSON name
// is the flag's name without dashes, in any case.
func flagField(t reflect.Type, flag string) (int, bool) {
	want := strings.ReplaceAll(flag, "-", "")
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && strings.EqualFold(name, want) {
			return i, true
		}
	}
	return 0, false
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

// serveRunE is the RunE of a "serve" command whose flags are bound to
// flags and --config to *config: it reads the configuration (the file's,
// then the flags given over it by overlay, then extra when not nil, then
// defaults, validated) and runs run until SIGINT or SIGTERM.
func serveRunE[C serveConfig[C]](flags *C, config *string, load func(string) (C, error), extra func(cmd *cobra.Command, cfg *C),
	run func(context.Context, C) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadServeConfig(*config, load, func(cfg *C) {
			overlay(cmd, flags, cfg)
			if extra != nil {
				extra(cmd, cfg)
			}
		})
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return run(ctx, cfg)
	}
}
