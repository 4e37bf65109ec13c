package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// demoSummary is what "metertrust demo --json" prints.
type demoSummary struct {
	DataDir          string   `json:"data_dir"`
	KMS              string   `json:"kms"`
	CAs              []string `json:"cas"`
	OrgCertificates  []string `json:"org_certificates"`
	Batch            string   `json:"batch"`
	Devices          int      `json:"devices"`
	DeviceCerts      int      `json:"device_certificates"`
	RevokedSerial    string   `json:"revoked_serial"`
	CRLNumber        int64    `json:"crl_number"`
	CRLEntries       int      `json:"crl_entries"`
	OCSPRevoked      string   `json:"ocsp_revoked"`
	OCSPGood         string   `json:"ocsp_good"`
	Verified         int      `json:"verified"`
	RefusedRevoked   bool     `json:"refused_revoked"`
	BatchKey         string   `json:"batch_key"`
	IssueAfterClose  string   `json:"issue_after_close"`
	AuditEntries     int64    `json:"audit_entries"`
	AuditChainIntact bool     `json:"audit_chain_intact"`
}

// newDemoCmd is "metertrust demo": the whole SMKI story in one process.
func newDemoCmd() *cobra.Command {
	var f caFlags
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the SMKI story end to end: ceremonies, issuance, bulk, revocation, CRL, OCSP, validation, batch close, audit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.data == "" {
				dir, err := os.MkdirTemp("", "metertrust-demo-")
				if err != nil {
					return err
				}
				f.data = dir
			}
			e, err := openCAEnv(ctx, cmd, &f, true)
			if err != nil {
				return err
			}
			defer e.Close()
			if err := writeCAConfig(f.data, e.cfg); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if f.json {
				w = io.Discard
			}
			sum, err := runDemo(ctx, w, e, f.data)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), sum)
			}
			fmt.Fprintf(w, "\nSummary: %d CAs, %d organisation and %d device certificates, 1 revoked (CRL #%d, OCSP %s), %d paths valid, batch key %s, audit chain of %d entries intact. Data in %s\n",
				len(sum.CAs), len(sum.OrgCertificates), sum.DeviceCerts, sum.CRLNumber, sum.OCSPRevoked, sum.Verified, sum.BatchKey, sum.AuditEntries, sum.DataDir)
			return nil
		},
	}
	f.register(c)
	return c
}

func runDemo(ctx context.Context, w io.Writer, e *caEnv, dir string) (demoSummary, error) {
	sum := demoSummary{DataDir: dir, KMS: e.keys.Kind(), Batch: "DEMO1"}
	step := 0
	say := func(format string, args ...any) {
		step++
		fmt.Fprintf(w, "%2d. "+format+"\n", append([]any{step}, args...)...)
	}
	a := e.auth

	say("Init ceremony in %s (keys in %s): SMKI root, Organisation CA, DCCKI root and TLS CA", dir, e.keys.Kind())
	cas, err := a.Init(ctx, ca.InitRequest{})
	if err != nil {
		return sum, err
	}
	for _, c := range cas {
		fmt.Fprintf(w, "      %-10s %s (serial %s)\n", c.Name, c.Subject, c.Serial)
		sum.CAs = append(sum.CAs, c.Name)
	}

	supplier := smki.MustParseEUI("90-B3-D5-1F-30-01-00-00")
	say("Supplier %s generates DS, KA and prepayment KA keys and requests; the OCA issues them", supplier)
	var orgCerts []*smki.Certificate
	for _, u := range []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return sum, err
		}
		ku := x509.KeyUsageKeyAgreement
		if u == ca.UsageDS {
			ku = x509.KeyUsageDigitalSignature
		}
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, CommonName: "Demo Energy",
			Role: smki.RoleSupplier, EUI: supplier, KeyUsage: ku}, k)
		if err != nil {
			return sum, err
		}
		rec, err := a.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: smki.RoleSupplier, EUI: supplier, Name: "Demo Energy", Usage: u})
		if err != nil {
			return sum, err
		}
		c, err := smki.ParseCertificate(rec.DER)
		if err != nil {
			return sum, err
		}
		_, stdErr := x509.ParseCertificate(rec.DER)
		fmt.Fprintf(w, "      %-5s serial %X (crypto/x509 says: %v; smki reads it as %s)\n", u, rec.Serial, stdErr, c.Profile)
		orgCerts = append(orgCerts, c)
		sum.OrgCertificates = append(sum.OrgCertificates, fmt.Sprintf("%X", rec.Serial))
	}

	say("Batch ceremony: Device CA %s for 22 device certificates, signed by the root", sum.Batch)
	if _, err := a.OpenBatch(ctx, sum.Batch, 22); err != nil {
		return sum, err
	}
	say("Bulk: 10 simulated meters, each with DS and KA keys and certificates")
	bulk, err := a.IssueDevices(ctx, ca.BulkRequest{Batch: sum.Batch, Count: 10, OutDir: dir + "/devices"})
	if err != nil {
		return sum, err
	}
	sum.Devices, sum.DeviceCerts = bulk.Devices, bulk.Certificates
	fmt.Fprintf(w, "      EUIs %s to %s, keys in %s/devices\n", bulk.FirstEUI, bulk.LastEUI, dir)

	devs, err := e.db.FindCertificates(ctx, store.CertQuery{CA: sum.Batch, Kind: store.KindDevice, Usage: store.UsageDS, Limit: 2})
	if err != nil || len(devs) < 2 {
		return sum, fmt.Errorf("finding demo devices: %v", err)
	}
	victim, good := devs[0], devs[1]
	say("Meter %s reports its DS key compromised: revoke certificate %X", victim.EUI, victim.Serial)
	if _, err := a.Revoke(ctx, sum.Batch, victim.Serial, 1); err != nil {
		return sum, err
	}
	sum.RevokedSerial = fmt.Sprintf("%X", victim.Serial)
	crl, err := a.CRL(ctx, sum.Batch)
	if err != nil {
		return sum, err
	}
	rl, err := x509.ParseRevocationList(crl.DER)
	if err != nil {
		return sum, err
	}
	sum.CRLNumber, sum.CRLEntries = crl.Number, len(rl.RevokedCertificateEntries)
	say("CRL #%d of %s: %d entry, next update %s", crl.Number, sum.Batch, sum.CRLEntries, crl.NextUpdate.Format(time.RFC3339))

	batchInfo, err := a.CA(ctx, sum.Batch)
	if err != nil {
		return sum, err
	}
	issuer, err := x509.ParseCertificate(batchInfo.CertDER)
	if err != nil {
		return sum, err
	}
	resp := a.OCSPResponder()
	for _, probe := range []struct {
		rec store.Certificate
		dst *string
	}{{victim, &sum.OCSPRevoked}, {good, &sum.OCSPGood}} {
		leaf, err := x509.ParseCertificate(probe.rec.DER)
		if err != nil {
			return sum, err
		}
		req, err := ocsp.CreateRequest(leaf, issuer, nil)
		if err != nil {
			return sum, err
		}
		der, err := resp.Respond(ctx, req)
		if err != nil {
			return sum, err
		}
		r, err := ocsp.ParseResponseForCert(der, leaf, issuer)
		if err != nil {
			return sum, err
		}
		*probe.dst = map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}[r.Status]
	}
	say("OCSP (signed by %s): %s is %s, %s is %s", sum.Batch, victim.EUI, sum.OCSPRevoked, good.EUI, sum.OCSPGood)

	say("Path validation with the store's roots, CAs and CRLs")
	opts, err := ca.VerifyOptions(ctx, e.db, time.Now())
	if err != nil {
		return sum, err
	}
	opts.RequireRevocationInfo = true
	all, err := e.db.FindCertificates(ctx, store.CertQuery{CA: sum.Batch, Kind: store.KindDevice, IncludeRevoked: true})
	if err != nil {
		return sum, err
	}
	var leaves []*smki.Certificate
	leaves = append(leaves, orgCerts...)
	for _, r := range all {
		c, err := smki.ParseCertificate(r.DER)
		if err != nil {
			return sum, err
		}
		leaves = append(leaves, c)
	}
	for _, c := range leaves {
		_, err := smki.Verify(c, opts)
		switch {
		case err == nil:
			sum.Verified++
		case errors.Is(err, smki.ErrRevoked):
			sum.RefusedRevoked = true
			fmt.Fprintf(w, "      refused as expected: %v\n", err)
		default:
			return sum, fmt.Errorf("validating %s: %w", c.EUI, err)
		}
	}
	fmt.Fprintf(w, "      %d of %d certificates valid\n", sum.Verified, len(leaves))

	say("Close batch %s: its key is destroyed in %s and the destruction audited", sum.Batch, e.keys.Kind())
	if err := a.CloseBatch(ctx, sum.Batch, "demo complete"); err != nil {
		return sum, err
	}
	bi, err := a.Batch(ctx, sum.Batch)
	if err != nil {
		return sum, err
	}
	sum.BatchKey = bi.Key
	_, err = a.IssueDevices(ctx, ca.BulkRequest{Batch: sum.Batch, Count: 1})
	if !errors.Is(err, ca.ErrBatchClosed) {
		return sum, fmt.Errorf("issuing from a closed batch: got %v, want ca.ErrBatchClosed", err)
	}
	sum.IssueAfterClose = err.Error()
	fmt.Fprintf(w, "      key %s; issuing again fails: %v\n", bi.Key, err)

	n, err := e.db.VerifyAudit(ctx)
	if err != nil {
		return sum, fmt.Errorf("audit chain: %w", err)
	}
	sum.AuditEntries, sum.AuditChainIntact = n, true
	say("Audit log: %d hash-chained entries, chain verified", n)
	return sum, nil
}
