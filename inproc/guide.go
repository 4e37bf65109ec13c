package inproc

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// WriteGuide writes what a person needs to try the running system by hand:
// the services' URLs, the DCCKI and operator credential files, and curl
// commands that work against it. It never writes a private key or the
// operator token itself, only the paths of their files.
func (s *System) WriteGuide(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "data directory\t%s\n", s.Dir)
	if s.RouterURL != "" {
		fmt.Fprintf(tw, "router (mutual TLS)\t%s\n", s.RouterURL)
	}
	if s.OperatorURL != "" {
		fmt.Fprintf(tw, "operator API\t%s\n", s.OperatorURL)
	}
	if s.RepositoryURL != "" {
		fmt.Fprintf(tw, "certificate repository\t%s\n", s.RepositoryURL)
	}
	if s.CAURL != "" {
		fmt.Fprintf(tw, "CA service (mutual TLS)\t%s\n", s.CAURL)
	}
	fmt.Fprintf(tw, "DCCKI root (--cacert)\t%s\n", s.DCCKIRootFile)
	for _, p := range s.PartyList {
		if p.TLS == nil {
			continue
		}
		fmt.Fprintf(tw, "%s %s (%s)\t--cert %s --key %s\n", p.Name, p.EUI, p.UserRole, p.TLSCertFile, p.TLSKeyFile)
	}
	fmt.Fprintf(tw, "parties' SMKI keys (gbcs --keystore)\t%s\n", s.partiesDir())
	fmt.Fprintf(tw, "operator %s token file\t%s\n", OperatorName, s.OperatorTokenFile)
	if s.OperatorURL != "" && s.OperatorPasswordFile != "" {
		fmt.Fprintf(tw, "operators' dashboard\t%s/ (log in as %s, password in %s)\n", s.OperatorURL, OperatorName, s.OperatorPasswordFile)
	}
	if s.OperatorClientCertFile != "" {
		fmt.Fprintf(tw, "operator's DCCKI client (CA service)\t--cert %s --key %s\n", s.OperatorClientCertFile, s.OperatorClientKeyFile)
	}
	if len(s.Meters) > 0 {
		fmt.Fprintf(tw, "meters\t%d, %s to %s\n", len(s.Meters), s.Meters[0], s.Meters[len(s.Meters)-1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sup := s.Party(PartySupplier)
	if sup == nil || sup.TLS == nil || s.RouterURL == "" || len(s.Meters) == 0 {
		return nil
	}
	auth := fmt.Sprintf("--cacert %s --cert %s --key %s", q(s.DCCKIRootFile), q(sup.TLSCertFile), q(sup.TLSKeyFile))
	target := s.Meters[0]
	fmt.Fprintf(w, `
Try it (as the supplier):

  # 1. A service request: the router builds the GBCS command and returns it as hex ("message").
  curl %[1]s -H 'Content-Type: application/json' \
    -d '{"serviceReference":"4.1.1","target":"%[2]s"}' %[3]s/v1/service-requests

  # 2. Submit it (a register read is not critical: no signature). Put the message hex in place of HEX.
  curl %[1]s -H 'Content-Type: text/plain' --data HEX %[3]s/v1/commands

  # A critical command (7.2, disconnect) must be signed with the supplier's DS key first:
  echo HEX | metertrust gbcs sign --keystore %[4]s --signer %[5]s -

  # 3. The meter's answer (encrypted to the supplier's KA key), by polling or as server-sent events:
  curl %[1]s %[3]s/v1/responses
  curl -N %[1]s %[3]s/v1/events
`, auth, target, s.RouterURL, q(s.partiesDir()), sup.EUI)
	if s.RepositoryURL != "" {
		keys := filepath.Join(s.partiesDir(), sup.EUI.String())
		fmt.Fprintf(w, `
  # The same with the users' client (package client): the two steps, the signature when critical,
  # the response checked (MAC, device certificates from the repository) and decrypted:
  metertrust user send 4.1.1 %[1]s --router %[2]s %[3]s --repository %[4]s --decrypt %[5]s --wait 30s
  metertrust user send 7.2 %[1]s --router %[2]s %[3]s --signer %[6]s
  metertrust user watch --router %[2]s %[3]s --repository %[4]s --decrypt %[5]s
`, target, s.RouterURL, auth, s.RepositoryURL, q(keys+"-ka.key"), q(keys+"-ds.key"))
	}
	if s.OperatorURL != "" {
		fmt.Fprintf(w, `
  # The operator API, with the operator's bearer token:
  curl -H "Authorization: Bearer $(cat %[1]s)" %[2]s/v1/quarantine
  curl -H "Authorization: Bearer $(cat %[1]s)" %[2]s/v1/thresholds
`, q(s.OperatorTokenFile), s.OperatorURL)
	}
	if s.CAURL != "" {
		fmt.Fprintf(w, `
  # The CA service (the operator's DCCKI client certificate and token): revoke a certificate
  # (CA and serial as the repository lists them), or sign a CRL now.
  curl --cacert %[1]s --cert %[2]s --key %[3]s -H "Authorization: Bearer $(cat %[4]s)" \
    -H 'Content-Type: application/json' -d '{"ca":"CA","serial":"SERIAL","reason":"keyCompromise"}' %[5]s/v1/revocations
  curl --cacert %[1]s --cert %[2]s --key %[3]s -H "Authorization: Bearer $(cat %[4]s)" -X POST %[5]s/v1/crls/oca
`, q(s.DCCKIRootFile), q(s.OperatorClientCertFile), q(s.OperatorClientKeyFile), q(s.OperatorTokenFile), s.CAURL)
	}
	if s.RepositoryURL != "" {
		fmt.Fprintf(w, `
  # The certificate repository (open reads):
  curl '%[1]s/v1/certificates?eui=%[2]s'
  curl '%[1]s/v1/cas'
`, s.RepositoryURL, target)
	}
	return nil
}

// q quotes a path for a shell when it needs it.
func q(path string) string {
	path = filepath.Clean(path)
	if strings.ContainsAny(path, " '\"$`\\!*?&;|<>(){}[]#~") {
		return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
	}
	return path
}
