// Package e2e holds metertrust's end-to-end reliability tests through the
// real binary: it builds cmd/metertrust once, makes the SMKI and DCCKI
// certificates with the CLI ("ca init", "ca batch open", "ca issue devices",
// "keys new", "ca issue org", "ca issue tls-client", "ca issue tls-server"),
// and runs "metertrust serve fleet" and "metertrust serve router" as
// separate processes, on the embedded store and on PostgreSQL.
//
// The tests check the router's promises of DESIGN.md principles 3 to 5 and
// the GBCS anti-replay rule (spec section 7) from the outside: a command
// answered "accepted" survives the router's SIGKILL and is executed once by
// its meter (GBCS counter check); two router processes on one PostgreSQL
// count a burst exactly against the anomaly thresholds (spec section 10);
// malformed and hostile commands are refused with their problem code and
// leave nothing in the store. The users' journeys (journeys_test.go) are
// driven through the CLI as a user would: a third party's consent by the
// CIN read off the meter's display, reads under it and their refusals; a
// change of supplier with every refusal of its request; a user's own
// anomaly thresholds; each refusal checked by the router's stable code as
// the CLI prints it.
//
// Set METERTRUST_E2E_BINARY to test a binary built elsewhere instead of
// building one.
package e2e
