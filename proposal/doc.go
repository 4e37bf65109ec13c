// Package proposal is two-person control for the DCC's operators (issue
// 13, decision 023): an action too dangerous for one person (releasing or
// deleting several quarantined commands at once, loosening or deleting a
// DCC anomaly detection threshold, opening a device-CA batch) is first
// proposed, with a reason, by one operator, and executed only when a
// different operator holding the role the action needs approves it before
// the proposal expires (24 hours by default). Either operator may be
// refused; a proposal can also be rejected, and lapses when nobody decides
// it in time.
//
// A Desk holds the rules: who may propose and approve each kind (a Policy),
// how long a proposal stays open, and the Executor that carries out each
// kind's action on approval. The approval itself is one conditional update
// of the store (pending and not expired to approved), so of two operators
// approving at once exactly one wins and the action runs once. Every step,
// and every refusal, is appended to the audit log with the names of both
// operators.
//
// The two-person rule follows the dual-control requirement the SMKI and DCC
// security requirements place on privileged operations (SMKI Compliance
// Policy, "multi-person control"): no single operator can carry out the
// action alone.
package proposal
