// Package issuance compares, in one benchmark run, single-certificate
// issuance from a P-256 CSR by metertrust's CA (package ca), by step-ca's
// embedded authority (github.com/smallstep/certificates/authority) and by
// cfssl's local signer (github.com/cloudflare/cfssl/signer/local). It is a
// module of its own so that neither becomes a dependency of metertrust; see
// docs/performance.md, section "SMKI issuance".
package issuance
