// Package dlms reads and writes, byte for byte, the DLMS COSEM application
// data units that GB electricity meters (ESME) exchange with remote parties
// inside GBCS messages: the ACCESS-Request, ACCESS-Response and
// DATA-NOTIFICATION APDUs and the tagged A-XDR Data values they carry.
//
// It follows the GBCS payload description in gbcs-payloads.md: APDU framing
// (section 4.1), A-XDR Data including compact arrays (4.2), the 12-byte DLMS
// date-time (4.3), the protection parameters of Get Protected Attributes
// (4.4), the place of ciphered blocks (2.1, 2.2), the ESME use cases whose
// descriptors the specification pins down (4.5) and the DLMS alerts (6.2).
// The underlying standards are IEC 62056-5-3 (the ACCESS service and the
// DATA-NOTIFICATION APDU) and IEC 62056-6-2 (COSEM data types).
//
// The central property is an exact round trip: every input Parse accepts is
// written back to exactly the same bytes by AppendBinary, and its JSON form
// (lossless, with bytes as lower-case hex and readable names beside the
// numbers) decodes back to a value that writes the same bytes. Where the
// encoding leaves a choice (a non-minimal length form) the decoded value
// records it.
//
// The package does no cryptography. CipheredBlocks finds the octet strings
// that hold ciphered blocks so that the caller, who owns the keys, can decrypt
// them or replace their contents in place; ParseCipheredBlock splits a block
// for display.
//
// Typed builders and readers on top of the generic APDUs cover ECS01a (Set
// Tariff), ECS04b, ECS17b, ECS22b, ECS42 to ECS45, ECS50, ECS52, ECS68 and
// the DLMS alerts of section 6.2; Describe selects the one that matches a
// message code and an APDU.
package dlms
