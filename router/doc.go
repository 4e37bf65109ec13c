// Package router is the DCC-like router of metertrust: it receives GBCS
// commands from DCC users over mutually authenticated TLS, checks them in the
// order of the project's principle of least trust per transaction, records
// them durably, adds the access control broker's MAC and forwards them to the
// target device through a transport, then correlates the device's response
// and delivers it to the caller alone.
//
// It follows the GB Companion Specification (GBCS) as summarised in the
// project's GBCS security notes: the message layout of section 3, Remote Party
// signatures on critical commands (section 4, the DUIS two-step of
// pre-command and signed pre-command), the access control broker's MAC by
// static-static ECDH and the NIST SP 800-56A KDF (section 5, with Z cached
// per device in memory and never stored), the originator counter rule of
// section 7, unknown remote parties (section 8), the anomaly detection
// thresholds of section 10 and third-party consent of section 11. The
// eligibility of each DCC User Role for each service request is the DUIS
// matrix of service-requests.tsv.
//
// A command passes, in exactly this order: caller authentication, message
// well-formed, business originator equal to the caller, role eligible for the
// service request, target device known and owned by the caller for its role
// (or live consent for an other user), organisation certificate path and
// revocation, signature for critical commands, counter strictly greater than
// the last forwarded for (originator, target) and not far ahead, then the
// ECDH with the device (outside any transaction), then admission: in one
// transaction per group of concurrent commands (the Admitter), the counter
// again, the anomaly thresholds, and only for what they let through the MAC
// (KDF and GMAC) and the record, in the outbox; only then is the caller
// told "accepted". Every refusal has its own
// error kind (see Kind), usable with errors.Is, mapped to an HTTP status and
// error code in one place, and lands in the audit log.
//
// Every dependency (the device registry, certificates, the admitter, the
// key-agreement key, the ledger, the transport) is a small
// interface declared here by the consumer; the GBCS codec is package
// commands.
//
// The parts: Router (the pipeline: Submit, SubmitReleased, ForwardReleased,
// BuildServiceRequest for the DUIS two-step); Forwarder (the durable outbox
// drained at least once, a pair's commands strictly in counter order, with
// backoff, through a Transport: FleetTransport for the in-process reference
// meters, HTTPTransport for a communications service provider; responses
// correlated, checked and queued for their caller alone); Server (the HTTP
// API with mutual TLS, problem+json errors (package problem's shared problem
// types, with the router's error code as their "code" member), polling and
// server-sent events, the user's quarantine, the CIN consent flow, OpenAPI
// and metrics);
// Storage, GroupAdmitter, StoreCertificates and StoreRevocations (the
// interfaces over package store, with group commit); Registrar and
// ConsentDesk (device registry and consent records); and Service, which
// wires them for "metertrust serve router".
package router
