// Package provision reads manufacturers' provisioning files: the signed
// lists of devices, with a PKCS#10 request for each key injected at the
// factory, from which the DCC operator issues device certificates without
// anyone retyping a serial number.
//
// A file is JSON Lines (one JSON object per line, RFC 8259 text separated
// by LF): a header naming the format "metertrust-provisioning/1", the
// manufacturer's EUI-64, the creation time and the number of devices, then
// one line per device with its EUI-64, its GBCS device type and one request
// per key. Each request is a GB device request as package smki reads it
// (smki.ParseCSR: empty subject, critical key usage of exactly
// digitalSignature or keyAgreement, critical hardwareModuleName whose
// hwSerialNum is the device's EUI-64; GBCS section 4.3 as summarised in the
// project's GBCS security notes, section 2). The manufacturer signs the
// exact bytes of the file with the digital-signing key of its SMKI
// organisation certificate (ECDSA P-256 with SHA-256, a detached DER
// signature in base64); Verify checks it.
//
// Read is strict: unknown, repeated or missing fields, an unknown device
// type, a request that does not read or names another device, two requests
// of the same usage for a device, a device listed twice and a header count
// that disagrees with the lines are refused, with the line number and the
// device's EUI-64 in every error. Size limits bound the line length, the
// number of devices and the file. docs/provisioning.md describes the format
// for manufacturers.
package provision
