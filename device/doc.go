// Package device is the reference GB smart meter of metertrust: an
// electricity (ESME) or gas (GSME) meter that holds its own keys and
// trust-anchor cells, checks every command it receives in the order a GB
// meter must, executes a set of use cases against a small, deterministic
// model of a real meter, and answers in GB's own payloads and message forms.
// A Fleet holds many meters in one process for simulation and load tests,
// keeps the alerts they raise, and serves them over HTTP.
//
// It follows the project's GBCS notes: gbcs-security.md for the Remote Party
// signature (section 4), the access control broker's MAC (5), encryption of
// sensitive content end to end (6), anti-replay by originator counter (7),
// unknown remote parties (8) and the trust anchors and their replacement
// (9); and gbcs-payloads.md for the message forms (section 1), the ciphered
// blocks and their keys (2), the CS02 family in ASN.1 (3), the DLMS COSEM
// payloads of the ESME (4), the GBZ payloads of the GSME (5) and the alerts
// (6). The wire codecs are packages commands (framing, signature, MAC,
// KDF, encryption, the use-case catalogue), commands/dlms, commands/gbz and
// commands/asn; device only decides what a meter does with a message.
//
// A meter handles a message in this order: the MAC, checked with the key
// agreed between the device's key-agreement key and the access control
// broker's anchor, and the originator counter, which must be strictly
// greater than the last one accepted from that originator; the use case and
// the forms the catalogue allows for its code; the originator's role; for a
// signed command the Remote Party signature, checked against the
// digital-signature cell of the role allowed to send it; then execution. A
// message that fails any step is discarded without a response, as a real
// meter does, and counted with a typed Reason.
//
// Responses take the form GB gives the code: a response to a critical
// command is signed with no MAC header, any other is MAC'd with signature
// length 00. Sensitive content sits in ciphered blocks keyed for the user it
// is for (the unknown remote party's certificate when the command carried
// one, with the meter's own counter in the 26-byte other-information).
// Future-dated commands (ECS01a, GCS01a, GCS32, GCS39, CS02b) execute at
// their time and raise GB's future-dated outcome alerts; the ECS68 billing
// data log alert is raised on request. Alerts are signed, carry the meter's
// own counter and go to the alert sink of Config.
//
// Where the specification gives no payload layout (ECS66, ECS82, GCS01a,
// GCS13a, GCS17, GCS36, GCS60, GCS61), the meter uses the layouts "of our
// own, in GB's grammar" of commands/dlms and commands/gbz; docs/device.md
// lists which is which.
//
// The consumption a meter reports is synthetic: a seeded function of the
// meter's EUI and the half-hour slot, computed on demand and never stored,
// so the 13-month half-hourly profile log costs no memory.
package device
