// Package operator is the DCC operator API of metertrust: the HTTP service
// through which DCC operators watch anomaly detection and act on it (list,
// release or delete quarantined commands; read, set and delete thresholds;
// read live counts; follow alerts as server-sent events), and the operator
// credentials every metertrust service shares.
//
// It serves the operator side of the DCC's Anomaly Detection as summarised
// in the project's GBCS security notes, section 10: a command that breaches
// an Anomaly Detection Threshold is quarantined with a quarantine event
// reference and the kind of breach, and is released (it then goes through
// the remaining checks, the MAC and forwarding) or deleted by the DCC, who
// also sets the DCC thresholds. The decisions themselves are package
// anomaly's; this package authenticates operators, checks their roles,
// validates input, audits every refusal, and carries a released command on
// to the router.
//
// # Credentials
//
// An operator presents a bearer token (Authorization: Bearer <token>). The
// services keep only the token's SHA-256 (as Boulder's and step-ca's
// provisioners keep key digests, never the secret), in a strict JSON file
// read by [Load]:
//
//	{"operators": [
//	  {"name": "alice", "token_sha256": "<64 hex digits>", "roles": ["viewer", "quarantine-officer"]}
//	]}
//
// Roles are the anomaly roles of the operator API (viewer,
// quarantine-officer, threshold-admin) and the certificate repository's
// write permissions (publish, revoke), so one file serves every service.
// [Credentials.Authenticate] compares the presented token's digest with
// every configured digest in constant time. `metertrust operator token`
// mints a token and prints the line to add.
//
// # DCC users
//
// The owning DCC user lists, releases and deletes its own quarantined
// commands through the router's API (mutual TLS with its DCCKI
// certificate, role anomaly.RoleUser), not through this one.
//
// # Releases
//
// A release is recorded by the detector with the record's forwarding
// pending; the router carries the command on exactly once and records the
// outcome on the record. Beside the router (serve router
// --operator-listen, serve all, the demo) the server's Releaser forwards
// it at once and the answer is 200 with the router's receipt. In a process
// of its own that holds no key (metertrust serve operator, [ServeConfig])
// the Releaser is [Deferred]: the answer is 202 Accepted and the router's
// release sweeper forwards it; a GET of the record shows the outcome.
//
// # Two-person control
//
// Releasing or deleting several commands at once (POST
// /v1/quarantine/bulk-release, bulk-delete), loosening a DCC threshold and
// deleting one are not done but proposed (package proposal, decision 023):
// the answer is 202 Accepted with the proposal, which a different operator
// with the same role approves under /v1/proposals before it expires
// ([Config.ProposalTTL], 24 hours by default); the approval runs the
// action as the approver. [ConfirmOfficers] checks the two officers of a
// root ceremony (ca init, ca batch open) against their passwords.
//
// # Audit
//
// Package anomaly audits its own decisions (every release, delete and
// threshold change, and every refusal of one). This package audits what
// never reaches the detector: authentication failures, role refusals, and
// invalid input, and the outcome of forwarding a released command.
package operator
