package conformance_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/metertrust/metertrust/conformance"
	"github.com/metertrust/metertrust/device"
)

// Example runs the MAC cases against a reference meter behind its HTTP
// endpoint, built from the example keystore.
func Example() {
	dir, err := os.MkdirTemp("", "conformance-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ksDir := filepath.Join(dir, "ks")
	if err := conformance.GenerateKeystore(ksDir, time.Now()); err != nil {
		log.Fatal(err)
	}
	ks, err := conformance.LoadKeystore(ksDir)
	if err != nil {
		log.Fatal(err)
	}
	// The meter, as "serve fleet --config ks/fleet.json" runs it.
	cfg, err := device.LoadServeConfig(filepath.Join(ksDir, conformance.FleetConfigName))
	if err != nil {
		log.Fatal(err)
	}
	anchors, err := cfg.Anchors()
	if err != nil {
		log.Fatal(err)
	}
	meters, err := device.ReadBatchDir(cfg.Path(cfg.BatchDir), device.Electricity)
	if err != nil {
		log.Fatal(err)
	}
	fleet := device.NewFleet(device.Config{})
	if err := fleet.AddBatch(meters, anchors); err != nil {
		log.Fatal(err)
	}
	h, err := device.NewHTTPHandler(fleet, device.HTTPConfig{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	rep, err := conformance.RunDevice(context.Background(), conformance.DeviceConfig{
		Transport: &conformance.HTTPTransport{URL: srv.URL}, Keystore: ks, Only: conformance.Select([]string{"MAC"})})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rep.Results {
		fmt.Println(r.ID, r.Status)
	}
	fmt.Println("failed:", rep.Failed())
	// Output:
	// MAC-01 pass
	// MAC-02 pass
	// MAC-03 pass
	// MAC-04 pass
	// MAC-05 pass
	// failed: false
}
