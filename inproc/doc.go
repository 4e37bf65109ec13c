// Package inproc assembles every metertrust service in one process: the
// store, the SMKI and DCCKI certificate authorities (package ca), the DCC
// parties and DCC users with their SMKI organisation certificates and DCCKI
// client certificates, a batch of reference meters issued by a batch Device
// CA (package device), the anomaly detector (package anomaly), the router
// (package router) with its mutual-TLS API, the operator API (package
// operator) and the certificate repository (package repository).
//
// It is the one assembly of the whole system, in the manner of Upspin's
// testenv: "metertrust demo", "metertrust serve all", the end-to-end tests
// and the benchmarks start a [System] from a [Config] instead of wiring the
// packages by hand. The parties follow the GB security model as the
// project's GBCS security notes summarise it: Remote Party Roles and DCC
// User Roles (section 1), SMKI organisation certificates, one per key,
// digital-signature and key-agreement (section 2), the access control
// broker's key-agreement key behind every MAC (section 5), and the meters'
// trust anchors per role (section 9).
//
// # Data directory
//
// A System keeps everything in one directory (a temporary one, removed on
// Close, unless Config.DataDir is given):
//
//	metertrust.db          the embedded store (unless Config.StoreDSN)
//	keys/                  CA keys and the ACB key-agreement key (custody.Custody)
//	parties/               the parties' SMKI keys and certificates, in the
//	                       layout of package commands/keystore
//	                       (<EUI>-ds.key, <EUI>-ds.pem, <EUI>-ka.key, ...)
//	tls/                   DCCKI: ca.pem (the DCCKI root), router.pem and
//	                       router.key, and <party>.pem / <party>.key client
//	                       certificates for curl
//	devices/<batch>/       the meters' keys and device certificates
//	operators.json         operator credentials (token digests and
//	                       password hashes only)
//	operator.token         the operator's bearer token (mode 0600)
//	operator.password      the operator's dashboard password (mode 0600)
//	inproc.json            the manifest that lets a later Start reuse all this
//
// A directory holding an inproc.json is reused: no ceremony runs again, the
// parties, meters and operator credentials are read back. A directory
// holding a store on which the CA ceremony already ran (metertrust ca init)
// but no manifest keeps its CAs and gets the parties and meters added.
package inproc
