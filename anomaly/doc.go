// Package anomaly is the threshold anomaly detection of the metertrust
// router: it counts the commands each DCC user sends, in total and per
// service reference variant, and DCC-wide per service reference variant,
// over sliding or fixed windows; it checks values inside a command against
// attribute limits; and it quarantines a command that breaches a threshold,
// so that it is neither MAC'd nor forwarded until a DCC operator or the
// owning user releases it (or deletes it).
//
// It follows the DCC's Anomaly Detection Thresholds as summarised in the
// project's GBCS security notes, section 10: per-user thresholds in total and
// per type, DCC-wide thresholds per type, attribute limits on data inside a
// communication; users may set their own thresholds, which may only be
// stricter than the DCC's; a breach is quarantined and the user alerted with
// a quarantine event reference and the kind of breach (user threshold, DCC
// threshold, attribute limits). Three rules are the project's own: windows
// are sliding or fixed per threshold, counting is exact across every router
// instance sharing one store, and alerts reach subscribers within one second
// (GB's target is 30 minutes).
//
// # Counting
//
// [Detector.Check] decides and counts in one step: the [Store] counts the
// events in each applicable window and, only when every count is below its
// limit, records the request, atomically with respect to every other
// instance (PostgreSQL: a transaction holding advisory locks on the counter
// keys; SQLite: the single writer). In a sliding window of length w a
// request at time t counts for every check at a time before t+w: capacity
// frees exactly when the oldest event leaves the window. A fixed window of
// length w is one of the consecutive w-long intervals from the Unix epoch
// in UTC (24h: the UTC day), and its count starts afresh at its start. Quarantined requests do not count:
// the breach stops the flood without the quarantined commands pushing the
// user further over. A released command counts from the moment of its
// release, since it is then forwarded. When Check returns an error (the
// store is unreachable) nothing was counted and the router must refuse the
// command: detection fails closed.
//
// Thresholds are cached in each Detector and reloaded every second by
// [Detector.Run] (at once after a change through the same Detector), so a
// change made through one instance governs every instance within a second.
// Exactness holds for every counter whose threshold all instances have
// loaded: each instance locks the keys of the thresholds it applies.
//
// # Roles
//
// Operators act with the roles viewer, quarantine officer and threshold
// admin; a DCC user acts on its own quarantined commands and thresholds with
// the role user. [Permit] is the role matrix as data; every method of
// [Detector] that an operator or user calls checks it, and ownership for the
// user role, and every change (and every refused change) is appended to the
// audit log through the [Store].
//
// # Alerts
//
// A [Broker] fans alerts out to in-process subscribers without ever blocking
// the hot path: a subscriber whose buffer is full is dropped (its channel
// closed) and counted. With a [Notifier] (PostgreSQL LISTEN/NOTIFY) alerts
// raised by one router instance reach subscribers of every other.
package anomaly
