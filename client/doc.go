// Package client is the Go client of the metertrust router for DCC users:
// suppliers, network operators and other users (third parties with a
// consumer's consent). It is what a user's system embeds to send GBCS
// service requests and commands and to follow what comes back.
//
// # Connecting
//
// A Client calls the router over mutual TLS with the user's DCCKI client
// certificate (Config.TLS: the certificate, and the DCCKI root as RootCAs).
// The user's EUI-64 is read from that certificate. To check device
// responses the client needs the SMKI repository (Config.Repository), where
// it finds the devices' certificates, and the user's own key-agreement key
// (Config.KeyAgreement), with which it checks MACs and decrypts sensitive
// payloads; to send critical commands it needs the user's digital-signing
// key (Config.Signer). OpenKey opens either from a key file, a
// softkms:path= URI or a PKCS#11 URI (the key then never leaves the token).
// The client does not import the CA or anything that holds a CA key.
//
// # Sending
//
// A command goes in two steps (the DUIS "pre-command"): ServiceRequest asks
// the router to build the GBCS command of a service request (its reference,
// such as 4.1.1, its target device and parameters); a critical command must
// then be signed by the user (Sign), and Submit hands the command back to
// the router, which checks the signature, the counter, ownership or
// consent and the anomaly thresholds, adds the MAC and forwards it. Send
// does the three. Every refusal comes back as an *Error with the router's
// stable code (Code), matched by errors.Is against the package's Err
// values: ErrReplay, ErrNotOwner, ErrQuarantined, ...
//
// # Following
//
// Responses and alerts arrive as deliveries, numbered per user: Responses
// polls them after a cursor, Watch follows the router's event stream and
// reconnects from the last event it saw, and Wait waits for one command's.
// Open checks a device response as its user must (the device's signature,
// or the MAC under the user's key) and decrypts what is encrypted to the
// user: the router cannot read it.
//
// # Consent and thresholds
//
// An other user obtains a consumer's consent with the customer
// identification number flow (RequestCIN, then ClaimConsent with the number
// the consumer read back from the meter), lists, shows and revokes the
// consents it holds (Consents, Consent, RevokeConsent), and reads under
// them with Send; the router refuses a read reaching back more than 13
// months (ErrConsentPeriod). Every user may set anomaly thresholds of its
// own, stricter than the DCC's (Thresholds, SetThreshold, DeleteThreshold;
// ErrNotStricter).
package client
