// Package asn encodes and decodes the ASN.1 payloads of GBCS messages: the
// CS02 family of security-credential use cases (CS02a to CS02g and the CS02b
// and CS02g future-dated alerts) and the other use cases whose payload is
// ASN.1 (CS03 join, CS04 unjoin, CS06 firmware activation, CS07, CS08, the
// CS09 and CCS08 alerts, GCS28, GCS59 and the GCS62 alert).
//
// It follows gbcs-payloads.md section 3 (the project's reading of GBCS
// section 9 and the DCC reference test data): DER tags and values, with the
// GB exception for lengths. The encoder writes a length below 128 in one
// byte and every longer length as 82 hh ll, also for 128 to 255, as devices
// do (gbcs-payloads.md 3.1 and correction 9 in section 0). The decoder also
// accepts the strict DER form 81 xx for lengths 128 to 255 and records where
// it met it, so that decoding and encoding again reproduces the input byte
// for byte. Certificates and PKCS#10 requests are kept as their complete DER
// and parsed only on request.
//
// Every payload type has a Marshal and an Unmarshal method; Parse decodes
// into a new value of a given type, and Decode picks the type from the
// message code and the command, response or alert flag. Decoded values
// marshal to JSON with the ASN.1 field names and unmarshal back to a value
// that encodes to the same bytes, so a tool can print a payload, let a
// person edit it and encode it again.
//
// # Recorded encodings
//
// A decoded value records the few encoding choices the decoder accepts
// besides the ones the encoder makes, so that encoding it again gives back
// the input:
//
//   - The DERLengths field of a type lists the TLVs whose length, 128 to
//     255, was written in the strict DER form 81 xx rather than the GB form
//     82 00 xx: "self" for the type's own TLV, otherwise the ASN.1 name of
//     the field (a SEQUENCE OF or an OCTET STRING). Names that do not apply,
//     or whose length is no longer in 128 to 255 after an edit, are ignored.
//   - CellUsageExplicit records a DEFAULT cellUsage written out as 02 01 00.
//   - KeyUsage keeps its number of bytes and unused-bits count.
//
// Values built in Go leave these empty and encode in the GB form. Anything
// else that is not DER (a long length form below 128, a non-minimal
// INTEGER, non-zero padding bits, a GeneralizedTime not in the 15-character
// form) is refused.
//
// # JSON
//
// Field names are the ASN.1 names. Bytes are lower-case hex strings;
// certificates are {"raw": hex}. Enumerated numbers are {"value": n,
// "name": "..."}, and decoding reads only "value" (a bare number is also
// accepted). An absent OPTIONAL field is omitted; a present, empty
// SEQUENCE OF is []. A CHOICE is an object with the one alternative set.
//
// The message framing around a payload (the general-signing block, the MAC
// header and the signature) is not handled here.
package asn
