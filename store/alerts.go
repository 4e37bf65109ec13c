package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// DeviceAlert is a verified alert a device raised, as the router's alert
// intake records it (decision 018): at most one per (Device, Counter).
type DeviceAlert struct {
	// Device is the device that raised it (16 upper-case hex digits).
	Device string
	// Counter is the device's own counter in the alert's header.
	Counter uint64
	// Code is the alert's message code.
	Code uint16
	// Recipient is the header recipient.
	Recipient string
	// DeliveredTo is the user it was delivered to, "" when the router
	// consumed it (an alert to one of the DCC's own parties).
	DeliveredTo string
	// Rerouted is set when DeliveredTo is not Recipient: the device's
	// current owner, the recipient no longer holding the role.
	Rerouted bool
	// DeliverySeq is the delivery's Seq in DeliveredTo's sequence, 0 when
	// none.
	DeliverySeq int64
	// Source names the alert source (device transport) it was read from.
	Source string
	// Message is the whole GBCS alert.
	Message []byte
	// RaisedAt is when the source says the device raised it; ReceivedAt
	// when the router recorded it.
	RaisedAt, ReceivedAt time.Time
	// Unverified marks an alert the router could not check (MAC'd under
	// its recipient's key): it must be above the device's last verified
	// alert, but it is not recorded as the device's own and does not move
	// that mark, so a forgery cannot silence the device's later alerts.
	// Only its delivery is written; its recipient checks the MAC.
	Unverified bool
}

// ErrStaleAlert means an alert's counter is not above the highest recorded
// for its device, and it is not one already recorded (that is ErrExists).
var ErrStaleAlert = errors.New("store: alert counter not above the last recorded for the device")

// AlertIntake is one step of the router's alert intake for
// RecordAlertIntake: an alert read from source, recorded (Alert, with
// Delivery queued for its user when Delivery is not nil) or skipped (Alert
// nil: refused, or a duplicate), with its audit entries, and the source's
// cursor moved to Next.
type AlertIntake struct {
	Source string
	Next   uint64
	At     time.Time
	// Alert, when not nil, is recorded; a (device, counter) already
	// recorded gives ErrExists, a counter not above the device's highest
	// ErrStaleAlert; in both cases nothing else is written.
	Alert *DeviceAlert
	// Delivery, when not nil (and Alert is not), is queued with the alert;
	// its Seq is set on return.
	Delivery *Delivery
	Audits   []AuditEvent
}

// RecordAlertIntake writes one step of the alert intake in one
// transaction: the alert (if any), its delivery, the audit entries and the
// source's cursor, so the cursor never passes an alert that is not
// recorded.
func (s *RouterStore) RecordAlertIntake(ctx context.Context, in *AlertIntake) error {
	if in.Source == "" || in.At.IsZero() {
		return fmt.Errorf("%w: alert intake without a source or a time", ErrInvalid)
	}
	if in.Next > 1<<63-1 {
		return fmt.Errorf("%w: alert cursor %d out of range", ErrInvalid, in.Next)
	}
	return s.db.inTx(ctx, func(tx dbtx) error {
		if a := in.Alert; a != nil {
			if err := insertDeviceAlert(ctx, tx, in, a); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO router_alert_cursors (source, next, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (source) DO UPDATE SET next = excluded.next, updated_at = excluded.updated_at`,
			in.Source, int64(in.Next), dbTime(in.At)); err != nil {
			return fmt.Errorf("store: moving alert cursor of %s: %w", in.Source, err)
		}
		_, err := appendAuditsIn(ctx, tx, in.Audits)
		return err
	})
}

func insertDeviceAlert(ctx context.Context, tx dbtx, in *AlertIntake, a *DeviceAlert) error {
	switch {
	case !euiPattern.MatchString(a.Device) || !euiPattern.MatchString(a.Recipient):
		return fmt.Errorf("%w: alert device %q or recipient %q is not 16 upper-case hex digits", ErrInvalid, a.Device, a.Recipient)
	case a.DeliveredTo != "" && !euiPattern.MatchString(a.DeliveredTo):
		return fmt.Errorf("%w: alert delivered to %q", ErrInvalid, a.DeliveredTo)
	case a.Counter > 1<<63-1:
		return fmt.Errorf("%w: alert counter %d out of range", ErrInvalid, a.Counter)
	case len(a.Message) == 0 || a.ReceivedAt.IsZero() || a.RaisedAt.IsZero():
		return fmt.Errorf("%w: alert without its message or times", ErrInvalid)
	case (in.Delivery != nil) != (a.DeliveredTo != ""):
		return fmt.Errorf("%w: an alert delivered to %q needs exactly its delivery", ErrInvalid, a.DeliveredTo)
	}
	if a.Unverified {
		var one int
		err := tx.queryRow(ctx, `SELECT 1 FROM router_device_alerts WHERE device = $1 AND counter >= $2 LIMIT 1`,
			a.Device, int64(a.Counter)).Scan(&one)
		switch {
		case err == nil:
			return fmt.Errorf("alert %s/%d: %w", a.Device, a.Counter, ErrStaleAlert)
		case !errors.Is(err, errNoRows):
			return fmt.Errorf("store: reading alerts of %s: %w", a.Device, err)
		case in.Delivery == nil || in.Delivery.Caller != a.DeliveredTo || in.Delivery.Kind != DeliveryAlert:
			return fmt.Errorf("%w: an unverified alert is delivered to its recipient as an alert", ErrInvalid)
		}
		d, err := addDelivery(ctx, tx, *in.Delivery)
		if err != nil {
			return err
		}
		*in.Delivery, a.DeliverySeq = d, d.Seq
		return nil
	}
	// Recorded only if its counter is above every one recorded for the
	// device: an alert's counter rises (decision 018).
	n, err := tx.exec(ctx, `INSERT INTO router_device_alerts (device, counter, code, recipient, delivered_to, rerouted,
		delivery_seq, source, message, raised_at, received_at)
		SELECT $1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10
		WHERE NOT EXISTS (SELECT 1 FROM router_device_alerts WHERE device = $11 AND counter >= $12)`,
		a.Device, int64(a.Counter), int64(a.Code), a.Recipient, a.DeliveredTo, a.Rerouted, in.Source, a.Message,
		dbTime(a.RaisedAt), dbTime(a.ReceivedAt), a.Device, int64(a.Counter))
	if err != nil {
		if errors.Is(err, errUnique) || errors.Is(classify(err), errUnique) {
			return fmt.Errorf("alert %s/%d: %w", a.Device, a.Counter, ErrExists)
		}
		return fmt.Errorf("store: recording alert %s/%d: %w", a.Device, a.Counter, err)
	}
	if n == 0 {
		var one int
		err := tx.queryRow(ctx, `SELECT 1 FROM router_device_alerts WHERE device = $1 AND counter = $2`, a.Device, int64(a.Counter)).Scan(&one)
		switch {
		case err == nil:
			return fmt.Errorf("alert %s/%d: %w", a.Device, a.Counter, ErrExists)
		case errors.Is(err, errNoRows):
			return fmt.Errorf("alert %s/%d: %w", a.Device, a.Counter, ErrStaleAlert)
		default:
			return fmt.Errorf("store: reading alert %s/%d: %w", a.Device, a.Counter, err)
		}
	}
	if in.Delivery == nil {
		return nil
	}
	if in.Delivery.Caller != a.DeliveredTo || in.Delivery.Kind != DeliveryAlert {
		return fmt.Errorf("%w: an alert's delivery goes to %s as an alert", ErrInvalid, a.DeliveredTo)
	}
	d, err := addDelivery(ctx, tx, *in.Delivery)
	if err != nil {
		return err
	}
	*in.Delivery, a.DeliverySeq = d, d.Seq
	if _, err := tx.exec(ctx, `UPDATE router_device_alerts SET delivery_seq = $1 WHERE device = $2 AND counter = $3`,
		d.Seq, a.Device, int64(a.Counter)); err != nil {
		return fmt.Errorf("store: recording alert %s/%d: %w", a.Device, a.Counter, err)
	}
	return nil
}

// AlertCursor returns the alert intake's cursor for source: the index of
// the next alert to read, 0 when none was read.
func (s *RouterStore) AlertCursor(ctx context.Context, source string) (uint64, error) {
	var next int64
	err := s.db.read().queryRow(ctx, `SELECT next FROM router_alert_cursors WHERE source = $1`, source).Scan(&next)
	if errors.Is(err, errNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: reading alert cursor of %s: %w", source, err)
	}
	return uint64(next), nil
}

// LastDeviceAlert returns the highest alert counter recorded for device,
// and false when none is.
func (s *RouterStore) LastDeviceAlert(ctx context.Context, device smki.EUI) (uint64, bool, error) {
	var last *int64
	err := s.db.read().queryRow(ctx, `SELECT MAX(counter) FROM router_device_alerts WHERE device = $1`, device.String()).Scan(&last)
	if err != nil {
		return 0, false, fmt.Errorf("store: reading last alert of %s: %w", device, err)
	}
	if last == nil {
		return 0, false, nil
	}
	return uint64(*last), true, nil
}

// DeviceAlerts returns the alerts recorded for device, oldest first, at
// most limit (0 for DefaultLimit).
func (s *RouterStore) DeviceAlerts(ctx context.Context, device smki.EUI, limit int) ([]DeviceAlert, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	rs, err := s.db.read().query(ctx, `SELECT device, counter, code, recipient, delivered_to, rerouted, delivery_seq, source,
		message, raised_at, received_at FROM router_device_alerts WHERE device = $1 ORDER BY counter LIMIT $2`, device.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading alerts of %s: %w", device, err)
	}
	defer rs.Close()
	var out []DeviceAlert
	for rs.Next() {
		var a DeviceAlert
		var counter, code int64
		var raised, received timeCol
		if err := rs.Scan(&a.Device, &counter, &code, &a.Recipient, &a.DeliveredTo, &a.Rerouted, &a.DeliverySeq, &a.Source,
			&a.Message, &raised, &received); err != nil {
			return nil, fmt.Errorf("store: reading alerts of %s: %w", device, err)
		}
		a.Counter, a.Code, a.RaisedAt, a.ReceivedAt = uint64(counter), uint16(code), raised.t, received.t
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: reading alerts of %s: %w", device, err)
	}
	return out, nil
}
