// Package gbz reads and writes the GBZ (ZigBee) payloads of GBCS messages
// byte for byte: the payloads of the gas meter (GSME) and gas proxy (GPF) use
// cases and of their alerts.
//
// It follows the project's GBCS payload specification (gbcs-payloads.md), a
// reading of the GBCS GBZ use cases and of the ZigBee Cluster Library (ZCL)
// as GB meters use them:
//
//   - section 5.1, the GBZ header (profile id 0x0109 and the component count)
//     and its components: control byte, cluster id, length, optional
//     from-date-time, the additional header of encrypted components, the ZCL
//     header, then the ZCL payload or the ciphered information;
//   - section 2.1 and 2.2, where ciphered blocks sit in a GBZ payload and how
//     a ciphered block is laid out (the cryptography itself is elsewhere);
//   - section 5.2, the ZCL frame control, the profile-wide commands Read
//     Attributes, Read Attributes Response and Default Response, ZCL data
//     types, status codes and little-endian UTC times;
//   - section 5.3, the GSME valve use cases GCS32, GCS39 and GCS33;
//   - section 6.3, GBZ alerts, including the future-dated execution (0x00CD),
//     firmware receipt (0x00CF) and integrity warning (0x00F2) layouts.
//
// Parse and ParseAlert accept every payload the grammar allows and nothing
// else; whatever they accept re-encodes to exactly the same bytes, since the
// decoded values record every choice the encoding leaves open (unknown
// control bits, the additional header control byte, timestamps outside the
// usual range). Lengths and counts are never recorded: they follow from the
// content and are recomputed by the encoder.
//
// Decoded values marshal to JSON (bytes as lower-case hex) and back. Fields
// whose names end in "_name" are display help for people reading the JSON;
// the decoder ignores them and reads only the numbers.
//
// Cluster-specific ZCL commands other than the valve commands of section 5.3
// are kept as their ZCL header and payload bytes, which the specification does
// not detail.
package gbz
