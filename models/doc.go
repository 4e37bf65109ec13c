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
//
// # The change-of-supplier model
//
// changeofsupplier.pml models the router's change-of-supplier state machine
// (DUIS 6.23: the DCC's transitional change-of-supplier party signs a CS02b
// supplierByTransCoS, 0x0107, that puts the new supplier's keys in the
// meter's supplier cells) and, on the same path, a supplier replacing its
// own key (SR 6.15.1, CS02b supplierBySupplier, 0x0102), as
// docs/decisions/014-change-of-supplier.md designs them:
//
//   - The router keeps, per meter, an ownership record in its store: the
//     settled supplier key (and so the owner), and at most one change: its
//     kind, its target key, an episode number that correlates the meter's
//     answers with it (in the design, the CS02b's and CS02a's transaction
//     ids), the authorising party's sequence number, and whether it is
//     pending (the CS02b may be on its way and its answer is awaited) or
//     unsettled (its outcome is unknown). A change request is recorded,
//     pending, in one transaction before anything is sent; a request while
//     another change is pending or unsettled is refused as change-pending,
//     a rotation by a supplier that is not the owner as not-owner.
//   - The CS02b's answer settles the change: executed, the record moves to
//     the target key; executed and refused (the meter's resourcesBusy),
//     the record stays as it was and the requester is told "refused". A
//     copy the meter discards as a replay says nothing of the outcome: the
//     change becomes unsettled. No answer in time (nothing on its way any
//     more, or a timeout firing while the command or its answer is still on
//     the link) makes it unsettled too.
//   - An unsettled change is settled by reading the meter's supplier cells
//     with a CS02a: the record takes the key the meter holds, and the
//     requester is told "applied" or "not applied". A read with no answer
//     in time is sent again. A late CS02b answer of the same change, coming
//     after the timeout, settles it as well; answers of earlier changes are
//     ignored.
//   - While a change is pending or unsettled, critical commands of both
//     suppliers for the meter are refused (ownership-unsettled); once
//     settled, those of the owner are forwarded and the other's refused as
//     not-owner.
//   - The router may crash and restart between any two of its steps; its
//     memory (where it is in the change's exchange) is lost, and a change
//     found pending or unsettled in the store is unsettled and read back.
//   - The link loses and duplicates commands and loses answers; commands to
//     the meter arrive in the order sent (but with -DOVERTAKE), answers in
//     the order given.
//   - The meter holds one supplier key (the supplier cells as one) and, per
//     authorising party (TCoS, supplier), the last sequence number; it
//     executes a CS02b only with a greater one (advanced whether the
//     replacement then succeeds or is refused, so a copy of a refused CS02b
//     is discarded too), a supplierBySupplier only if signed with the key
//     it holds, and a critical command only from the supplier whose key it
//     holds. It answers CS02a with its cells.
//
// Two suppliers and one meter. OLD, trusted at first with key KA, asks
// once to rotate to KA2 (again if told change-pending); NEW asks for the
// change until it is applied, at most twice; each sends one critical
// command through the router at any time, and OLD one straight to the
// meter ("sent another way"). Each run has at most 1 crash, 1 lost message,
// 1 duplicated command, 1 early timeout and 1 CS02b refused by the meter;
// the budgets are macros, and larger ones are checked the same way, more
// slowly (docs/decisions/014-change-of-supplier.md has the figures).
//
// # Properties of the change of supplier
//
// Checked after every step of the router and the meter, in every run:
//
//   - (a) Settled means agreed: when no change is pending or unsettled, the
//     router's key, and so its owner, is the one the meter holds.
//   - (b) The router admits critical commands only of the supplier whose key
//     the meter holds: so never of both suppliers, and never of one the
//     meter would refuse; and a critical command the router forwarded is
//     never refused by the meter as coming from a supplier it does not
//     trust (checked when the meter takes it). A supplier is refused as
//     not-owner only when the change is settled and the other one owns the
//     meter.
//   - (d) The meter applies a CS02b only of the change the router records
//     as pending or unsettled, with that change's episode: never one of a
//     second change, never one the router has already settled. A read finds
//     the old key or the change's target, nothing else.
//
// Checked when a run ends (both suppliers finished, nothing under way),
// which every run does: the router's key is the meter's, and every change
// request has its final answer. With -DLIVENESS, the LTL property (c)
// "every change settles", [] (pending or unsettled -> <> settled), holds
// with no fairness assumption, the budgets making every run finite, as in
// the anti-replay model.
//
// Every statement of the model is reached (but the meter's end), and seven
// witness runs (-DWITNESS=1..7) show the paths are taken: a change whose
// answer is lost, settled as applied through the CS02a read; the rotation
// racing the change (NEW told change-pending, then both done, in turn); a
// change the meter refuses, ownership staying with OLD; a late CS02b answer
// settling a change after the timeout; OLD refused after the change both by
// the router (not-owner) and by the meter (its command sent another way); a
// critical command refused while the change is unsettled; a restart finding
// the change pending, settled as applied by the read.
//
// # Wrong variants of the change of supplier
//
// Each is refuted by spin with a short counterexample (breadth first unless
// stated):
//
//   - changeofsupplier_broken.pml moves ownership when the router sends the
//     CS02b, not on the meter's confirmation: (a) fails at once (13 steps:
//     the router's owner is NEW, the meter still trusts OLD). With -DATREST,
//     which checks (a) and (b) only when nothing is on its way, the
//     counterexample is the lasting one: the link loses the CS02b, the
//     router has settled on NEW, the meter trusts OLD; NEW's commands are
//     forwarded and refused by the meter, OLD's refused by the router and
//     executed by the meter when sent another way.
//   - -DNOBLOCK keeps admitting the recorded owner's critical commands while
//     the change is pending or unsettled: (b) fails (15 steps: the meter
//     applies the CS02b while the router still forwards OLD's commands).
//   - -DNOEXCL starts a second change in place of one not settled: (d) fails
//     (22 steps: OLD's rotation is sent, NEW's change recorded over it, and
//     the meter applies the rotation, which the router no longer awaits).
//   - -DUNCORRELATED settles from any CS02a answer, not only one of the
//     current change: (a) fails (depth first, 104 steps: OLD's rotation is
//     refused by the meter, the timeout fires early and a CS02a goes out,
//     and the late CS02b answer settles the rotation as refused; the read's
//     answer, still on its way, then settles NEW's change as not applied
//     after a restart, while the meter holds KB).
//   - -DREPLAYMEANSNO takes the meter's replay refusal of a CS02b copy for
//     "not applied": (a) fails (31 steps: the link duplicates the CS02b, the
//     first copy is applied and its answer lost, the second is discarded as
//     a replay, and the router settles on OLD while the meter holds KB).
//   - -DOVERTAKE lets a command overtake the CS02b on its way to the meter:
//     (d) fails (38 steps: the timeout fires early, the CS02a overtakes the
//     CS02b and reads KA, the router settles the change as not applied, and
//     the meter then applies the CS02b). The design depends on commands to
//     one meter arriving in the order sent; see what the model does not
//     prove.
//   - -DNORETRY does not read again when a CS02a or its answer is lost: (c)
//     fails (an acceptance cycle: after a restart the read's answer is lost
//     and the change stays unsettled for ever, both suppliers refused).
//
// # What the change-of-supplier model does not prove
//
// The model is of the design, not of the Go code. The meter's supplier
// cells are one key: the three cells (DS, KA, prepayment KA) are replaced
// together or not at all, and a partly applied CS02b (some cells replaced,
// some refused) is not modelled (the design treats it as unsettled and
// reads). Signatures, MACs, certificate checks of the new supplier's
// certificates, the TCoS key in the key store, the CS02b's encoding,
// future-dated CS02b (executionDateTime) and their cancellation, the
// recovery and contingency modes (which change anchors without the
// router), other roles' anchors and the network operator are not
// modelled. Critical commands are delivered straight from the router's
// admission, in order with the CS02b: the design must keep that order
// (the CS02b goes to the meter after the critical commands accepted before
// the change was recorded). The outbox keeps it with per-target barriers
// (decision 019): the CS02b and the CS02a are claimed only when every
// command for the meter admitted before them has left the outbox, and
// nothing admitted after them for the meter is claimed while they are in
// it (admitted before: committed before the barrier's admission began;
// commands admitted concurrently with it have no order, as in the model,
// where the change's recording and a command's admission are atomic steps).
// Commands to one meter are assumed to arrive in the order sent, or not at
// all: -DOVERTAKE shows the settling read is unsound otherwise, and the
// router cannot ensure it past its own outbox (a WAN that retries on its
// own). Non-critical commands, the new
// supplier's own later rotations, more than two suppliers, and the
// originator counters of critical commands (the anti-replay model's
// business) are left out; runs with more faults than the budgets are not
// checked.
package models
