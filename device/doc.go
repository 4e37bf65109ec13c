// Package device is the reference GB smart meter of metertrust: an
// electricity (ESME) or gas (GSME) meter that holds its own keys and
// trust-anchor cells, checks every command it receives in the order a GB
// meter must, executes a set of use cases against a small, deterministic
// model of a real meter, and answers with signed, MAC'd and, for sensitive
// data, encrypted responses. A Fleet holds many meters in one process for
// simulation and load tests.
//
// It follows the GB Smart Metering Equipment Technical Specifications
// Companion Specification (GBCS) as summarised in the project's GBCS security
// notes: the Remote Party signature on critical commands and their responses
// (section 4), the access control broker's MAC and the device's MAC on
// responses (section 5), encryption of sensitive payloads end to end
// (section 6), anti-replay by originator counter (section 7), unknown remote
// parties (section 8), and the device's trust anchors and their replacement
// by CS02b, including change of supplier and device re-key by CS02c/CS02d
// (section 9). The wire codec itself is package commands.
//
// A meter handles a message in this order: the MAC, checked with the key
// agreed between the device's key-agreement key and the access control
// broker's anchor; the originator counter, which must be strictly greater
// than the last one accepted from that originator; for critical commands the
// Remote Party signature, checked against the digital-signature cell of the
// role allowed to send the command; then execution. A message that fails any
// step is discarded without a response, as a real meter does, and counted
// with a typed Reason that tests and the fleet's statistics can observe.
//
// The supply-switch and balance-reset payloads follow the DLMS
// access-request layout GBCS uses (section 18.4 shows ECS04b byte for byte);
// the other use-case payloads (registers, profile and daily logs, tariff,
// CIN, meter balance) use a compact encoding of our own, marked "(our rule)"
// in the doc comments and described in docs/device.md. Their encoders and
// decoders are exported so a supplier (the router, the demo) can build
// commands and read responses.
//
// The consumption a meter reports is synthetic: a seeded function of the
// meter's EUI and the half-hour slot, computed on demand and never stored,
// so the 13-month half-hourly profile log costs no memory.
package device
