package conformance

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/internal/testenv"
)

// TestHTMLReportInBrowser writes the HTML report of a failing run (a meter
// that accepts replays) and opens it from disk in a real headless Chromium
// (METERTRUST_TEST_CHROMIUM) with networking off: the verdict, the totals
// and a row per case are there. With METERTRUST_SCREENSHOTS=DIR it saves
// a screenshot there.
func TestHTMLReportInBrowser(t *testing.T) {
	exe := testenv.Var(t, "METERTRUST_TEST_CHROMIUM")
	ks, f := referenceFleet(t)
	var last []byte
	srv := httptest.NewServer(meterEndpoint(func(ctx context.Context, msg []byte) ([]byte, error) {
		resp, err := f.Deliver(ctx, ks.Manifest.Device.EUI, msg)
		if errors.Is(err, device.ErrReplay) && last != nil {
			return last, nil
		}
		if err == nil {
			last = resp
		}
		return resp, err
	}))
	defer srv.Close()
	rep := runDevice(t, ks, &HTTPTransport{URL: srv.URL})
	page := filepath.Join(t.TempDir(), "report.html")
	out, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(out); err != nil {
		t.Fatal(err)
	}
	out.Close()

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("proxy-server", "127.0.0.1:1"), chromedp.WindowSize(1280, 900))
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.CSS(".verdict"))); err != nil {
		t.Fatalf("opening the report: %v", err)
	}
	verdict, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".verdict")))
	if err != nil || verdict != "FAIL" {
		t.Errorf("verdict %q, %v", verdict, err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tbody tr").length`))
	if err != nil || rows != len(rep.Results) {
		t.Errorf("%d rows, want %d (%v)", rows, len(rep.Results), err)
	}
	failed, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tbody tr.fail").length`))
	if err != nil || failed != rep.Count(StatusFail) {
		t.Errorf("%d failed rows, want %d (%v)", failed, rep.Count(StatusFail), err)
	}
	if dir := os.Getenv("METERTRUST_SCREENSHOTS"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "conformance-report.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("report with %s cases opened", strconv.Itoa(rows))
}
