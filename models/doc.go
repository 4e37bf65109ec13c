// Package models holds formal models of metertrust's protocols, checked by
// the Spin model checker in the package's tests: each .pml file is
// translated with "spin -a", compiled with gcc and run, and the test fails
// when a property the model states is refuted, or, for a model of a known
// mistake, when it is not. The package has no Go code of its own. The
// tests need spin and gcc: without them they skip, or fail when the CI
// variable is set (internal/testenv).
//
// # The anti-replay model
//
// antireplay.pml models the anti-replay rule of GBCS section 7, as the
// project's security notes state it (a command's counter must be strictly
// greater than the last recorded for its (originator, target) pair; a
// device executes a command only if its counter is strictly greater than
// the last it executed from that originator), as the router applies it with
// group commit and an at-least-once outbox:
//
//   - Callers' commands are committed in groups. Each command first passes a
//     pre-check against the in-memory last counter of its pair (refused as a
//     replay if not above it); then one transaction per group checks each
//     command's counter against the recorded one (strictly greater, else
//     refused as a replay), advances it and writes the command with its
//     outbox row (store.RecordCommands), and commits. Only after the commit
//     is the in-memory counter brought up to the recorded one, and only then
//     is each caller told "accepted" or "replay". A transaction may also fail
//     without a crash: every caller of the group hears "unavailable" and
//     nothing is stored.
//   - The forwarder claims only the oldest undelivered command of the pair
//     (store.ClaimOutbox), sends it, and on the transport's answer (executed,
//     or refused by the device as a replay: router.ErrDeviceReplay) deletes
//     its outbox row in a later transaction (store.MarkForwardedAll). An
//     attempt with no answer is retried, and a lease may expire while the
//     message is still on its way, so the meter may get the command twice.
//   - The link between router and meter loses and duplicates messages.
//   - The router may crash and restart between any two of its steps: before
//     a group commits (its callers hear "unavailable"), after the commit but
//     before its callers are told (they hear "unavailable"; the commands are
//     durable), between a send and its mark (the command is sent again).
//     Its memory is rebuilt from the store.
//   - The meter executes a command only if its counter is strictly greater
//     than the last it executed, and answers either way.
//
// One originator and one meter. A (counter 1) and B (2) are submitted
// together, then R (2, a replay of B's counter) and C (3); a caller told
// "unavailable" resubmits the same command once (A', B', R', C'), ahead of
// anything newer. A group takes what is queued, up to four commands; with
// MAXG=1 each group holds one command, which for one pair is the rule "at
// most one command per pair in a group". Commands are pre-checked while the
// committer is idle; with CONCURRENT each is pre-checked as it arrives, in
// its caller's goroutine, while a group may be committing (eleven times the
// states; the test checks it with MAXG=1). Each run has at most 2 crashes, 1
// failed transaction, 1 lost message, 1 duplicated message and 1 early
// lease expiry; the budgets are macros, and larger ones are checked the
// same way, more slowly. The model prints what happens, so that spin's
// replay of a counterexample reads as a story.
//
// # Properties
//
// Checked at the moment each answer is given or each command executed, in
// every run:
//
//   - Accepted means durable: a caller is told "accepted" only for a
//     committed command.
//   - Refusals are sound: a caller is told "replay" only when a command
//     with a counter at least as great is already committed (so never on the
//     strength of a transaction that may yet fail), and never for a command
//     that is itself committed. For the pre-check this holds because the
//     in-memory counter may lag the store's but is never ahead of it.
//   - Only committed commands reach the meter, and it executes no counter
//     twice.
//
// Checked when a run ends (every caller answered, nothing left to deliver),
// which every run does (no invalid end state, and with -DLIVENESS the LTL
// property "eventually the router is done and every committed command was
// executed once" holds with no fairness assumption: the fault budgets make
// every run finite, and a run that never got there would be a cycle, which
// pan -a reports):
//
//   - No accepted command is lost: every committed command was executed by
//     the meter exactly once. This counts executions, which is stronger than
//     "the outbox is empty": the forwarder deletes the outbox row also when
//     the meter refuses the command as a replay, which hides a loss if the
//     meter had executed a greater counter instead.
//   - A submission refused as a replay was never executed, and none was
//     executed twice. A resubmission of a command that did commit (its
//     caller heard "unavailable") is refused as a replay; the command itself
//     runs once.
//
// Every statement of the model is reached in some run (pan's "unreached"
// list for the default switches is empty but for the meter's end, which
// waits for ever), and four witness runs
// (-DWITNESS=1..4) show the faults matter: spin reaches a failed group
// whose resubmissions are accepted and run, a crash after the commit whose
// resubmission is refused while the command runs once, a command sent again
// and refused by the meter, and the replay R refused while B and C run.
//
// # Wrong variants
//
// antireplay_broken.pml advances the in-memory counter as soon as a command
// passes the pre-check, before its group commits. Spin refutes the refusal
// check. Its shortest counterexample: a crash loses A and B before their
// group forms; their callers resubmit them, sent with R and C; A' and B'
// pass the pre-check, moving the in-memory counter to 2, and R, right
// behind them, is refused as a replay while the store has no counter at
// all (had the group's transaction then failed, R's caller would have been
// refused for a command that never existed). Without crashes
// (-DCRASHES=0) it is worse: A and B's transaction fails, the in-memory
// counter stays at 2, and A's resubmission, a legitimate command, is
// refused as a replay although nothing was ever recorded; so is every
// command of the pair up to that counter, until a restart.
//
// -DUNORDERED lets the forwarder take any undelivered command rather than
// the pair's oldest: spin finds B executed before A, the meter refusing A
// as a replay and the forwarder deleting A's outbox row as delivered, an
// accepted command lost.
//
// # What it does not prove
//
// The model is of the design, not of the Go code: that RecordCommands,
// ClaimOutbox, MarkForwardedAll and the ledger implement these steps is for
// their own tests. It has one pair (pairs are independent in the design:
// counters, the outbox order and the meter's rule are all per pair), one
// committer and one forwarding worker (ClaimOutbox's one-head-per-pair rule
// is what makes several workers behave as one, and is assumed), counters
// that never wrap, and no giving up after MaxAttempts (a command failed for
// good is reported to its caller as failed, not executed). Runs with more
// faults than the budgets are not checked. Responses, their correlation and
// delivery to callers, signatures, MACs, the anomaly thresholds and the
// bounds on how far a counter may jump are not modelled.
package models
