package operator

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, json string
		wantErr    string
		check      func(t *testing.T, c Config)
	}{
		{"empty", `{}`, "", func(t *testing.T, c Config) {
			d := c.withDefaults()
			if d.MaxBodyBytes != DefaultMaxBodyBytes || time.Duration(d.Heartbeat) != DefaultHeartbeat ||
				time.Duration(d.ForwardTimeout) != DefaultForwardTimeout || time.Duration(d.ShutdownTimeout) != DefaultShutdown {
				t.Errorf("defaults %+v", d)
			}
		}},
		{"full", `{"listen":"127.0.0.1:8446","maxBodyBytes":4096,"heartbeat":"5s","forwardTimeout":"1m","shutdownTimeout":"3s"}`, "", func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:8446" || c.MaxBodyBytes != 4096 || time.Duration(c.Heartbeat) != 5*time.Second || time.Duration(c.ForwardTimeout) != time.Minute {
				t.Errorf("config %+v", c)
			}
		}},
		{"unknown field", `{"port":8446}`, `unknown field "port"`, nil},
		{"trailing data", `{} {}`, "trailing data", nil},
		{"numeric duration", `{"heartbeat":15}`, "duration must be a string", nil},
		{"bad duration", `{"heartbeat":"often"}`, "often", nil},
		{"negative heartbeat", `{"heartbeat":"-1s"}`, "heartbeat", nil},
		{"negative forward timeout", `{"forwardTimeout":"-1s"}`, "forwardTimeout", nil},
		{"negative shutdown", `{"shutdownTimeout":"-1s"}`, "shutdownTimeout", nil},
		{"negative body", `{"maxBodyBytes":-1}`, "maxBodyBytes", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	path := filepath.Join(t.TempDir(), "operator.json")
	if err := os.WriteFile(path, []byte(`{"heartbeat":"1s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(path); err != nil || time.Duration(c.Heartbeat) != time.Second {
		t.Errorf("LoadConfig = %+v, %v", c, err)
	}
	if _, err := LoadConfig(path + ".missing"); !errors.Is(err, ErrConfig) {
		t.Errorf("LoadConfig(missing) = %v", err)
	}
}
