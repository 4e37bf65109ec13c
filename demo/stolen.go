package demo

import (
	"context"
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// StolenSummary is the stolen meter: its keys open it and no other.
type StolenSummary struct {
	Meter string `json:"meter"`
	Other string `json:"other"`
	// OpenedOwn says a read the attacker MAC'd with the stolen key was
	// executed by the stolen meter itself (the router never saw it).
	OpenedOwn bool `json:"openedOwn"`
	// RefusedOther says the same forgery aimed at another meter was
	// refused by that meter (bad MAC).
	RefusedOther bool `json:"refusedOther"`
}

// actStolen: a thief extracts one meter's key-agreement key. With it he can
// compute that meter's MAC key (the ECDH of the meter's key and the access
// control broker's is symmetric) and so talk to that meter; but every
// other meter's MAC key needs that meter's own private key, which he does
// not have: there is no central table of meter secrets to steal.
func (r *run) actStolen(ctx context.Context) error {
	s := r.sys
	own, other := s.Meters[1], s.Meters[2]
	sum := &r.sum.Stolen
	sum.Meter, sum.Other = own.String(), other.String()
	r.say("A thief extracts meter %s's key-agreement key and forges the access control broker's MAC", own)
	stolen, err := custody.ReadFile(s.MeterKeyFile(own, "ka"))
	if err != nil {
		return fmt.Errorf("the stolen meter's key: %w", err)
	}
	acbPub, ok := s.ACB.KA.(interface{ PublicKey() *ecdh.PublicKey })
	if !ok {
		return fmt.Errorf("%w: the ACB key exposes no public key", ErrAPI)
	}
	forge := func(target smki.EUI) ([]byte, error) {
		sup := s.Party(inproc.PartySupplier)
		last, _, err := s.Router.Storage.LastCounter(ctx, sup.EUI, target)
		if err != nil {
			return nil, err
		}
		pc, err := s.Router.Router.BuildServiceRequest(ctx, router.Caller{EUI: sup.EUI, Role: sup.UserRole},
			router.ServiceRequestInput{Ref: "4.1.1", Target: target, Counter: last + 5000})
		if err != nil {
			return nil, err
		}
		raw, err := hex.DecodeString(pc.Message)
		if err != nil {
			return nil, err
		}
		m, err := commands.Parse(raw)
		if err != nil {
			return nil, err
		}
		// The MAC key from the stolen meter's side: ECDH(meter, ACB public).
		if err := commands.AddMAC(ctx, stolen, acbPub.PublicKey(), m); err != nil {
			return nil, err
		}
		return m.Marshal()
	}
	msg, err := forge(own)
	if err != nil {
		return err
	}
	if _, err := s.Fleet.Deliver(ctx, own, msg); err != nil {
		return fmt.Errorf("%w: the forged read to the stolen meter itself: %v, want executed", ErrAPI, err)
	}
	sum.OpenedOwn = true
	r.detail("meter %s executes the forged register read: the stolen key opens the meter it came from", own)
	if msg, err = forge(other); err != nil {
		return err
	}
	if _, err := s.Fleet.Deliver(ctx, other, msg); !errors.Is(err, device.ErrBadMAC) {
		return fmt.Errorf("%w: the forged read to another meter: %v, want refused (bad MAC)", ErrAPI, err)
	}
	sum.RefusedOther = true
	r.detail("meter %s refuses the same forgery: bad MAC; its MAC key needs its own private key, held nowhere else", other)
	return nil
}
