package device

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// Alert is one alert a meter raised: the whole GBCS message (CRA flag 3,
// the meter's own counter, signed with its DS key and without MAC header,
// as these critical alerts are; gbcs-payloads.md 1.2 and 6.1), with the
// facts a collector sorts by.
type Alert struct {
	// Device is the meter that raised it.
	Device smki.EUI
	// Code is the alert's message code, such as 0x00CC.
	Code uint16
	// Counter is the meter's own counter the alert carries.
	Counter uint64
	// Recipient is the party it is addressed to (the header recipient).
	Recipient smki.EUI
	// At is when the meter raised it.
	At time.Time
	// Message is the alert's bytes.
	Message []byte
}

// ErrNoRecipient is returned when the meter holds no anchor of the party an
// alert is for.
var ErrNoRecipient = errors.New("device: no recipient for the alert")

// scheduled is a future-dated command waiting for its execution time, with
// what the meter needs to execute it and report the outcome. Exactly one of
// tariff, valve and update is set.
type scheduled struct {
	at time.Time
	// code, originator and counter identify the command; the outcome alert
	// is addressed to its originator.
	code       uint16
	originator smki.EUI
	counter    uint64
	// tariff is an ECS01a tariff and activations the descriptors of its six
	// activation attributes (gbcs-payloads.md 4.5, specifications 16 to 21).
	tariff      *Tariff
	activations []dlms.RequestSpec
	// components are the cluster and ZCL header of each component of a
	// GCS01a tariff, named in its outcome alerts.
	components []gbz.Component
	// valve is a GCS32 or GCS39 change of supply.
	valve *valveChange
	// update is a CS02b credential update.
	update *cs02bRequest
}

// schedule adds a future-dated command. The caller holds m.mu.
func (m *Meter) schedule(s *scheduled) {
	m.scheduled = append(m.scheduled, s)
	slices.SortStableFunc(m.scheduled, func(a, b *scheduled) int { return a.at.Compare(b.at) })
}

// cancelScheduled drops the future-dated commands match selects. The caller
// holds m.mu.
func (m *Meter) cancelScheduled(match func(*scheduled) bool) {
	m.scheduled = slices.DeleteFunc(m.scheduled, match)
}

// Tick executes the future-dated commands whose time has come, and raises
// their outcome alerts. Handle does the same before each message; Tick is
// for a meter left alone (a fleet's clock, a test).
func (m *Meter) Tick(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runDue(ctx)
}

// runDue executes the scheduled commands due at the meter's time, in time
// order. The caller holds m.mu.
func (m *Meter) runDue(ctx context.Context) {
	now := m.env.now()
	for len(m.scheduled) > 0 && !m.scheduled[0].at.After(now) {
		s := m.scheduled[0]
		m.scheduled = m.scheduled[1:]
		var err error
		switch {
		case s.tariff != nil && s.tariff.Gas != nil:
			err = m.activateGasTariff(ctx, s)
		case s.tariff != nil:
			err = m.activateTariff(ctx, s)
		case s.valve != nil:
			err = m.executeValve(ctx, s)
		case s.update != nil:
			err = m.executeUpdate(ctx, s)
		}
		if err != nil {
			m.env.log.WarnContext(ctx, "future-dated command executed, its alert not raised", "eui", m.eui,
				"message_code", commands.MessageCode(s.code).String(), "counter", s.counter, "error", err)
		}
	}
}

// activateTariff puts a future-dated ECS01a tariff in force and raises one
// future-dated outcome alert (0x00CC, alert code 8F66) per activation
// attribute, as gbcs-payloads.md 6.2 and the RTDS note describe: each names
// the command and one of the descriptors 16 to 21, and is stamped with the
// activation time.
func (m *Meter) activateTariff(ctx context.Context, s *scheduled) error {
	m.tariff = s.tariff
	ts, err := dlms.NewDateTime(s.at)
	if err != nil {
		return err
	}
	var errs []error
	for _, spec := range s.activations {
		errs = append(errs, m.raiseAlert(ctx, CodeFutureDatedDLMS, s.originator, func(out *commands.Message) ([]byte, error) {
			a := dlms.FutureDatedAlert{AlertCode: dlms.AlertFutureDatedSuccess, Time: ts, MessageCode: s.code,
				Counter: s.counter, Class: spec.Class, OBIS: spec.OBIS, Attribute: spec.ID}
			return a.Notification(dlms.InvokeID(out.Counter)).MarshalBinary()
		}))
	}
	return errors.Join(errs...)
}

// raiseAlert builds an alert of code to recipient, its payload written by
// payload once the header (and so the alert's counter) is known, signs it
// and hands it to the alert sink. The caller holds m.mu.
func (m *Meter) raiseAlert(ctx context.Context, code uint16, recipient smki.EUI, payload func(out *commands.Message) ([]byte, error)) error {
	now := m.env.now()
	out := &commands.Message{CRA: commands.Alert, Counter: m.nextCounter(now), Originator: m.eui,
		Recipient: recipient, Code: commands.MessageCode(code)}
	p, err := payload(out)
	if err != nil {
		return fmt.Errorf("alert %s payload: %w", out.Code, err)
	}
	out.Payload = p
	b, err := m.seal(ctx, out, commands.FormSigned, nil)
	if err != nil {
		return fmt.Errorf("alert %s: %w", out.Code, err)
	}
	m.env.log.InfoContext(ctx, "alert raised", "eui", m.eui, "message_code", out.Code.String(), "counter", out.Counter, "recipient", recipient)
	if m.env.alerts != nil {
		m.env.alerts(ctx, Alert{Device: m.eui, Code: code, Counter: out.Counter, Recipient: recipient, At: now, Message: b})
	}
	return nil
}

// supplier returns the supplier the meter's anchors hold: the subject of
// the supplier's key-agreement management cell.
func (m *Meter) supplier() (smki.EUI, *Cell, error) {
	if a := m.anchors.anchor(smki.RoleSupplier); a != nil {
		if c := a.first(UsageKeyAgreement, asn.CellManagement); c != nil {
			return c.Subject, c, nil
		}
	}
	return smki.EUI{}, nil, fmt.Errorf("%w: no supplier key-agreement anchor", ErrNoRecipient)
}

// RaiseBillingDataLog raises the ECS68 billing data log alert (0x0061;
// gbcs-payloads.md 4.5 and 6.2), as a meter does at a billing date: a
// DATA-NOTIFICATION with alert code 8F0A, the time, the protection
// parameters and a ciphered block encrypted to the supplier, whose
// plaintext is one billing record. The record's layout is GB's; its
// contents are ours (the spec gives the types, not their meaning): the
// import register in Wh and 0, the last 48 completed half hours in Wh, and
// four arrays of eight zeros (the reference meter keeps one rate). It
// returns ErrNoRecipient when the meter holds no supplier anchor.
func (m *Meter) RaiseBillingDataLog(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sup, cell, err := m.supplier()
	if err != nil {
		return err
	}
	now := m.env.now()
	var rec dlms.BillingRecord
	rec.Values[0] = clamp32(m.model.registerAt(now))
	end, _ := slotOf(now)
	for i := range rec.Array48 {
		if n := end - 48 + uint64(i); end >= 48 {
			rec.Array48[i] = clamp32(m.model.slot(n))
		}
	}
	plain, err := dlms.BillingDataLog{Records: []dlms.BillingRecord{rec}}.Data().AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("billing data log plaintext: %w", err)
	}
	ts, err := dlms.NewDateTime(now)
	if err != nil {
		return err
	}
	return m.raiseAlert(ctx, CodeECS68, sup, func(out *commands.Message) ([]byte, error) {
		key, err := commands.EncryptionKey(ctx, m.ka, cell.ka, out)
		if err != nil {
			return nil, err
		}
		defer clear(key)
		block, err := commands.SealBlock(key, out.Originator, plain)
		if err != nil {
			return nil, err
		}
		a := dlms.BillingDataLogAlert{AlertCode: dlms.AlertBillingDataLog, Time: ts,
			Protection: dlms.NewProtectionParameters(out.Counter, out.Originator, out.Recipient), Ciphered: block}
		return a.Notification(dlms.InvokeID(out.Counter)).MarshalBinary()
	})
}

// gbzFutureDatedAlert returns the payload of a GSME future-dated outcome
// alert (0x00CD; gbcs-payloads.md 6.3).
func gbzFutureDatedAlert(alertCode uint16, at time.Time, fd gbz.FutureDated) ([]byte, error) {
	ts, err := gbz.NewUTC(at)
	if err != nil {
		return nil, err
	}
	return gbz.NewFutureDatedAlert(alertCode, ts, fd).Marshal()
}
