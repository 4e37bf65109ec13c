// Package ra is the API of "metertrust serve ca": the internal service that
// holds the SMKI's online issuing keys (the organisation CA, the open device
// CA batches and the DCCKI TLS issuing CA; never a root) and is the only
// process that signs with them. Through it operators revoke certificates,
// ask for a CRL now and issue organisation and device certificates from
// certificate requests; in the background the service re-signs the OCSP
// responses and CRLs the repository serves before they go stale.
//
// The API is HTTP over mutual TLS: a caller presents a DCCKI client
// certificate (chaining to the configured client CAs and not revoked) and,
// for every request but /healthz, an operator's bearer token whose roles
// allow the action (operator.RoleRevoke, operator.RoleIssue). Both are
// recorded: the operator is the actor of the audit entries, the client
// certificate's identity their "client" detail. Every request, refusal and
// outcome is audited, errors are RFC 9457 problem documents (package
// problem), and the API is described in docs/api/ca.yaml.
//
// Organisations' own routes need no token, the client certificate being the
// organisation: a registered manufacturer's device requests and provisioning
// imports, and a device owner's re-key (POST /v1/requests/device-rekey and
// its confirmation), whose evidence is the device's own signed CS02c answer
// and CS02e read-back addressed to the requester (decision record 017).
//
// Opening a device CA batch is under two-person control (package proposal,
// decision 023): an operator with the issue role proposes it (POST
// /v1/proposals), a different one approves or rejects it before it expires.
// Approval signs nothing, this service holding no root key: the proposal
// stays approved until the offline ceremony ("metertrust ca batch open
// --proposal ID", two officers) opens exactly that batch and marks it
// executed.
//
// The repository, internet-facing, holds no key: it serves the CRLs and
// pre-signed OCSP responses this service stores.
package ra
