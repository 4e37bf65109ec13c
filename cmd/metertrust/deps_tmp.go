// Blank imports that pin the chosen dependencies in go.mod until the packages that use them land.
// Remove once every import below is used by real code.
package main

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/labstack/echo/v4"
	_ "github.com/labstack/echo/v4/middleware"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "github.com/zmap/zlint/v3"
	_ "github.com/zmap/zlint/v3/lint"
	_ "github.com/zmap/zcrypto/x509"
	_ "go.step.sm/crypto/kms/apiv1"
	_ "go.step.sm/crypto/kms/softkms"
	_ "go.step.sm/crypto/kms/pkcs11"
	_ "go.step.sm/crypto/x509util"
	_ "go.step.sm/crypto/pemutil"
	_ "golang.org/x/crypto/cryptobyte"
	_ "golang.org/x/crypto/ocsp"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
)

