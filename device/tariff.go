package device

import (
	"bytes"
	"time"

	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// Tariff is a tariff a meter holds, in force or waiting for its activation
// time: the typed content of the command that set it.
type Tariff struct {
	// Electricity is the ESME tariff of ECS01a (gbcs-payloads.md 4.5): the
	// passive calendars, special days, block thresholds, standing charge
	// and price matrix, and the activation time as the command gave it.
	// Nil on a GSME.
	Electricity *dlms.Tariff
	// Gas is the GSME tariff of GCS01a (our layout in the GBZ grammar,
	// commands/gbz): tariff information, price matrix and day profile. Nil on
	// an ESME.
	Gas *gbz.GasTariff
	// ActivatedAt is when the tariff took effect, or will.
	ActivatedAt time.Time
	// Originator and Counter identify the command that set it.
	Originator smki.EUI
	Counter    uint64

	// raw is the command's payload, from which clone reads a fresh copy.
	raw []byte
}

// own returns t with its own copy of the payload bytes, which alias the
// message a command arrived in, and its typed content read again from that
// copy, so that the meter keeps no reference to the message.
func (t *Tariff) own() *Tariff {
	c := *t
	c.raw = bytes.Clone(t.raw)
	fresh := c.clone()
	fresh.raw = c.raw
	return &fresh
}

// clone returns a copy of t that shares nothing with it, read again from
// the payload it was set by.
func (t *Tariff) clone() Tariff {
	c := *t
	c.raw = nil
	if t.Electricity != nil {
		if a, err := dlms.Parse(t.raw); err == nil && a.AccessRequest != nil {
			if e, err := dlms.ReadTariff(a.AccessRequest); err == nil {
				c.Electricity = &e
			}
		}
	}
	if t.Gas != nil {
		if p, err := gbz.Parse(t.raw); err == nil {
			if g, err := gbz.ReadGasTariff(p); err == nil {
				c.Gas = g
			}
		}
	}
	return c
}
