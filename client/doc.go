// Package client is the Go client of the metertrust router for DCC users:
// suppliers, network operators and other users (third parties reading a
// meter with its consumer's consent). It is what a user's system embeds to
// send GBCS service requests and commands, follow the responses and alerts
// that come back and check them, obtain and manage consents, set its own
// anomaly thresholds and take over a meter in a change of supplier. The
// command line's "metertrust user" and "metertrust thirdparty" are built on
// it; docs/client.md is the integrator's guide with both side by side.
//
// The client holds only the user's own keys. It does not import the CA or
// anything that holds a CA key, and it trusts the router for nothing it
// can check itself: it signs only the command it asked for, and it checks
// every device message against the device's certificates from the SMKI
// repository.
//
// # Connecting
//
// New returns a Client from a Config:
//
//   - Config.Router, the router's https URL, and Config.TLS: the user's
//     DCCKI client certificate (loaded with tls.LoadX509KeyPair, so that
//     its Leaf is parsed) and, as RootCAs, the DCCKI root the router's
//     certificate chains to. The user's EUI-64 and user role (IS, ES, GS,
//     ED, GT, OU, RSA) are read from that certificate: EUI and Role return
//     them.
//   - Config.Signer, the user's digital-signing key, for critical
//     commands (Send and Sign refuse to sign without it).
//   - Config.KeyAgreement, the user's key-agreement key, with which Open
//     checks MACs and decrypts what the meter encrypted to the user.
//   - Config.Repository, the SMKI repository's URL, where Open finds the
//     devices' certificates (DeviceKeys), and optionally Config.SMKIRoot,
//     the root their issuing CAs must chain to.
//
// Keys come from package custody's OpenKey: a key file, a softkms:path=
// URI, or a PKCS#11 URI, the key then never leaving the token.
//
// # Sending: the two steps
//
// A command goes in two steps, as DUIS's pre-command: ServiceRequest asks
// the router to build the GBCS command of a service request (its
// reference, such as "4.1.1" or "7.2", its target device and parameters)
// with the next originator counter; a critical command (PreCommand.Critical:
// a disconnection, a key change) must then be signed by the user (Sign),
// which signs only a command from the user to the target asked for, of a
// use case serving the service request asked for, with the counter the
// router announced; Submit hands it back to the router, which checks the
// user's role, ownership or consent, the certificate path, the signature,
// the counter and the anomaly thresholds, adds the access control broker's
// MAC, records it durably and answers with a Receipt. Send does the three
// steps; the steps apart serve a system that signs elsewhere. Command reads
// the router's record of a command.
//
// # Following responses and alerts
//
// Whatever comes back for the user is a Delivery, numbered in the user's
// own sequence: a device's response (KindResponse), a command the router
// could not deliver for good (KindFailure) or a device alert (KindAlert).
// Responses polls the deliveries after a cursor; Wait waits for one
// command's; Watch follows the router's event stream, calling a function
// with each Event in order (deliveries, and the anomaly alerts about the
// user's own commands), and when the connection breaks, stays silent
// longer than StreamIdle or the router restarts, reconnects and resumes
// after the last event handled, so nothing is missed or repeated.
//
// # Opening responses
//
// Open checks a device message as its user must, then reads it: the
// device's signature when it is signed (responses to critical commands),
// else the MAC under the user's key-agreement key and the device's; it
// reads the payload (DLMS for electricity meters, GBZ for gas) and
// decrypts the blocks the meter encrypted end to end to the user, which
// the router cannot read (Response.Plaintexts). Open's refusals are plain
// errors, not *Error: they are the client's verdict, not the router's.
//
// # Consent (other users)
//
// An other user (OU) reads a consumer's meter only under a consent record
// (spec section 11). RequestCIN has the router make the meter display a
// random customer identification number (CIN; the router keeps only its
// hash); the consumer reads it off the meter to the user, and ClaimConsent
// turns it into a Consent for the service requests in its scope. Consents
// lists the records the user holds, Consent shows one, RevokeConsent ends
// one with a reason. Reads under a consent are ordinary Sends; the router
// refuses one without a live consent covering the service request
// (ErrNotOwner) and one reaching back more than 13 months
// (ErrConsentPeriod). A consent belongs to the consumer: a change of
// supplier leaves it in force.
//
// # Thresholds
//
// Every user may set anomaly detection thresholds of its own (GBCS section
// 10), stricter than the DCC's for the same scope: Thresholds lists the
// user's own and the DCC's, SetThreshold creates or replaces one
// (ErrNotStricter when it is not stricter), DeleteThreshold deletes one.
// Over any of them the router quarantines the user's commands
// (ErrQuarantined) and alerts the user on the event stream.
//
// # Change of supplier
//
// The incoming supplier, once the DCC's registration data name it for a
// meter, asks for the change with ChangeSupplier (SR 6.23), giving the
// serial numbers of its three organisation certificates; the DCC's
// transitional change-of-supplier party replaces the meter's supplier
// cells, and ownership moves only when the meter confirms. ChangeOfSupplier
// reads the change, WaitChange waits until it settles (ChangeOfSupplier.State:
// applied, refused, not-applied or diverged). While it runs, both
// suppliers' critical commands for the meter are refused
// (ErrOwnershipUnsettled); once applied, the old supplier's are refused
// (ErrNotOwner).
//
// # Errors
//
// Every refusal by the router is an *Error carrying the HTTP status and the
// router's stable error code (Error.Code), matched with errors.Is against
// the package's Err values, which compare by code:
//
//   - ErrUnauthenticated (401): the client certificate is unknown,
//     revoked, or not from the DCCKI.
//   - ErrMalformed (400): the submitted bytes are not a well-formed GBCS
//     command.
//   - ErrOriginator (403): the command's business originator is not the
//     user.
//   - ErrNotEligible (403): the user's role may not send the service
//     request, or may not call this route (consents are the OU's).
//   - ErrUnknownDevice (404): the target device is not in the router's
//     registry.
//   - ErrNotOwner (403): the user does not supply or operate the device
//     for its role; an OU has no live consent covering the service
//     request; a CIN is wrong; the registration data do not name the
//     caller for a change of supplier.
//   - ErrOwnershipUnsettled (409): a critical command for a device whose
//     change of supplier is pending or unsettled; retry once it settles.
//   - ErrChangePending (409): a change of supplier for a device that has
//     one under way.
//   - ErrConsentPeriod (403): an OU's read reaching back more than 13
//     months.
//   - ErrCertPath (403): the user's organisation certificate (or, for a
//     change of supplier, a certificate it names) is missing, revoked, not
//     the user's, of the wrong usage, or does not chain to the SMKI root.
//   - ErrSignature (403): a critical command unsigned or its signature
//     wrong.
//   - ErrReplay (409): the originator counter was already used.
//   - ErrCounterAhead (409): the counter is too far ahead of the last one
//     or of the clock.
//   - ErrQuarantined (429): the command breached an anomaly threshold (the
//     DCC's or the user's own) and is held for an operator.
//   - ErrNotFound (404): a command, consent, change, threshold or CIN
//     challenge that does not exist or is not the user's.
//   - ErrBadRequest (400): an invalid request: bad JSON, an unsupported
//     service request, bad parameters, a serial that is not hex.
//   - ErrConflict (409): the request contradicts the state: a consent
//     already revoked, a change of supplier by the meter's own supplier.
//   - ErrNotStricter (409): a threshold of the user's not stricter than
//     the DCC's.
//   - ErrUnavailable (503): a dependency of the router failed; the request
//     was not acted on and may be retried.
//
// The router's HTTP layer refuses a few requests before any handler reads
// them (codes method-not-allowed, too-large, unsupported-media-type,
// uri-too-long, header-too-large); they come as an *Error with that Code
// and no Err value, as does any answer that is not a problem document
// (Code empty). Errors of the client's own (no signer, a command it will
// not sign, a response that does not check) and transport errors are not
// *Error.
package client
