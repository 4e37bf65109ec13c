// Package bench measures the router of package router on this machine: the
// figures of "metertrust bench router", recorded in docs/performance.md.
//
// One run starts the whole system in one process with package inproc, the
// project's one assembly, as a deployment would run it: the SMKI and DCCKI
// ceremonies of package ca on a fresh store (SQLite in a temporary
// directory, or a fresh schema of a PostgreSQL database), the DCC parties and
// a supplier with its digital-signing and key-agreement organisation
// certificates and its DCCKI client certificate, a fleet of reference meters
// (package device) registered with the router, anomaly thresholds high
// enough never to trip (so the anomaly stage counts every command), and the
// router service (router.NewService) on a loopback mutual-TLS listener,
// forwarding to the bench's recording transport. It then measures, in
// order:
//
//  1. raw ECDSA P-256 verifications and raw ECDH P-256 key agreements per
//     second with GOMAXPROCS goroutines, just before and just after the
//     peak, and from this process's CPU time the cost of one of each on one
//     core: the floor, the CPU a critical command to a meter whose Z is not
//     cached cannot do without;
//  2. the router's peak rate: critical commands (GBCS ECS43, DUIS service
//     request 7.2, built by the router's own DUIS step and signed by the
//     supplier before the clock starts) submitted by a client over mutual TLS
//     on persistent HTTP/1.1 connections, closed loop, each put through the
//     whole pipeline of GBCS and DUIS checks, signature (GBCS section 4),
//     originator counter (GBCS section 7 rule), anomaly count, ACB MAC
//     (GBCS section 5), durable record, and forwarded to a transport that
//     records and acknowledges them; with the router's and PostgreSQL's CPU
//     per command, the CPU efficiency E (the floor over their sum), the old
//     ratio of the rate to the verification rate, and the share of all
//     cores that router, client and database used;
//  3. latency open loop at half and at 90% of that rate, p50 and p99 over
//     every sample, measured from each request's scheduled send time;
//  4. for information, the end-to-end rate with the in-process meters
//     executing the commands and answering with signed responses that the
//     router checks and queues for the supplier.
//
// Each figure with a target (the constants Target*) is reported with its
// verdict. After the run the system stops and the whole audit chain of the
// store is verified (store.DB.VerifyAudit). With Config.Preload the fresh
// store is first filled by store.DB.Preload with the history of a router
// that has served for a while; Compare runs the bench fresh and pre-loaded
// and sets the two peaks side by side.
//
// With Config.Routers above 1 (PostgreSQL only) several router instances
// serve the one store, as several "metertrust serve router" processes
// would: the bench process's, and each other one in a process of its own
// (Config.Instance, the command re-executing itself; ServeInstance is its
// main) with its own store handle and pool, router.Service (group
// admitter, forwarder, anomaly detector) and recording transport, on a
// loopback mutual-TLS listener of its own with the same DCCKI server
// certificate; in the end-to-end phase the instances reach the meters
// through the bench's fleet endpoint (device.HTTPHandler, the router's
// HTTP transport). The client spreads its connections evenly over the
// routers; the figures are the aggregate, the server CPU that of every
// router process (their rusage, reported by each), the stage times and
// profiles merged; every command must still be accepted once and reach
// the transports, all of them together, exactly once. CompareRouters runs
// the bench with one router, then with several, each on a fresh schema,
// and checks the aggregate peak rate against one router's.
//
// The client runs in its own process when a Launcher is given (the command
// re-executes itself), so its CPU time is its own rusage; the split between
// router and meters inside the server process comes from a CPU profile,
// attributed by stack (package device) and by profiler label.
package bench
