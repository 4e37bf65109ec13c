package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/metertrust/metertrust/proposal"
)

// Defaults for the zero Config.
const (
	DefaultMaxBodyBytes   = 16 << 10
	DefaultHeartbeat      = 15 * time.Second
	DefaultForwardTimeout = 30 * time.Second
	DefaultShutdown       = 10 * time.Second
)

// Config configures the operator API. The zero value is valid and takes
// the defaults.
type Config struct {
	// Listen is the TCP address to serve on, host:port; used by the
	// command that runs the server, not by the handler.
	Listen string `json:"listen,omitempty"`
	// MaxBodyBytes bounds request bodies; larger ones get 413. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// Heartbeat is how often the event stream sends a heartbeat event, as
	// a Go duration ("15s"); zero means DefaultHeartbeat.
	Heartbeat Duration `json:"heartbeat,omitempty"`
	// ForwardTimeout bounds the router's handling of a released command,
	// which goes on if the operator's connection drops; zero means
	// DefaultForwardTimeout.
	ForwardTimeout Duration `json:"forwardTimeout,omitempty"`
	// ShutdownTimeout bounds Serve's graceful shutdown; zero means
	// DefaultShutdown.
	ShutdownTimeout Duration `json:"shutdownTimeout,omitempty"`
	// ProposalTTL is how long a proposal of two-person control (bulk
	// release or delete, loosening or deleting a DCC threshold) waits for
	// a second operator's approval before it expires; zero means
	// proposal.DefaultTTL (24h). Between 1m and 720h (decision 023).
	ProposalTTL Duration `json:"proposalTTL,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string
// such as "15s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"15s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("operator: invalid configuration")

// Validate reports the first thing wrong with c, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("%w: maxBodyBytes %d is negative", ErrConfig, c.MaxBodyBytes)
	case c.Heartbeat < 0:
		return fmt.Errorf("%w: heartbeat %s is negative", ErrConfig, time.Duration(c.Heartbeat))
	case c.ForwardTimeout < 0:
		return fmt.Errorf("%w: forwardTimeout %s is negative", ErrConfig, time.Duration(c.ForwardTimeout))
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("%w: shutdownTimeout %s is negative", ErrConfig, time.Duration(c.ShutdownTimeout))
	case c.ProposalTTL != 0 && (time.Duration(c.ProposalTTL) < time.Minute || time.Duration(c.ProposalTTL) > proposal.MaxTTL):
		return fmt.Errorf("%w: proposalTTL %s must be between 1m and %s", ErrConfig, time.Duration(c.ProposalTTL), proposal.MaxTTL)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = Duration(DefaultHeartbeat)
	}
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = Duration(DefaultForwardTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = Duration(DefaultShutdown)
	}
	if d := time.Duration(c.ProposalTTL); d < time.Minute || d > proposal.MaxTTL {
		c.ProposalTTL = Duration(proposal.DefaultTTL)
	}
	return c
}

// ParseConfig decodes a JSON configuration strictly (unknown fields and
// trailing data are errors) and validates it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Config{}, fmt.Errorf("%w: trailing data after the JSON object", ErrConfig)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads a configuration file (see ParseConfig).
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
