package ca

import (
	"errors"

	"github.com/metertrust/metertrust/custody"
)

// Sentinel errors of package ca, usable with errors.Is. Returned errors wrap
// them with the context of the failing step.
var (
	// ErrBatchClosed is returned when issuing from a batch Device CA whose
	// quota is used up or which was closed: its key no longer exists.
	ErrBatchClosed = errors.New("ca: batch device CA is closed")
	// ErrLint is returned when a prepared certificate, CRL or OCSP response
	// fails pre-issuance linting; the message names the failing lints.
	ErrLint = errors.New("ca: pre-issuance lint failed")
	// ErrCSR is returned for a certificate signing request that cannot be
	// read, has a bad signature, a key that is not P-256, or fields off the
	// SMKI profile.
	ErrCSR = errors.New("ca: certificate signing request refused")
	// ErrRequest is returned for an issuance or ceremony request with a
	// missing or invalid parameter.
	ErrRequest = errors.New("ca: invalid request")
	// ErrExists is returned when a ceremony would overwrite an existing CA,
	// key or output file.
	ErrExists = errors.New("ca: already exists")
	// ErrRevoked is returned when revoking a certificate already revoked;
	// it also matches ErrRequest.
	ErrRevoked = errors.New("ca: already revoked")
	// ErrNotFound is returned for an unknown CA, batch or certificate.
	ErrNotFound = errors.New("ca: not found")
	// ErrKey is returned by key custody: a key that cannot be created,
	// loaded or destroyed, or that is not an ECDSA P-256 key, or a CA key
	// that does not match its certificate. It is custody.ErrKey, so that the
	// custody's errors are the CA's.
	ErrKey = custody.ErrKey
	// ErrReadBack is returned when a freshly signed certificate, CRL or OCSP
	// response fails to read back or verify: the CA produced something it
	// would itself refuse, and nothing is stored.
	ErrReadBack = errors.New("ca: read-back check failed")
)
