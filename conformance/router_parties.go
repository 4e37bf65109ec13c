package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/commands"
)

// This file holds the router cases that need a second DCC user: a third
// party (an other user, OU) for consent and unknown-remote-party reads
// (gbcs-security 6, 8, 11; decision 015), and an incoming supplier for the
// change of supplier (gbcs-security 9; decision 014).

// readRef is the read the third-party cases send: the half-hourly profile
// (4.8.1, ECS22b), a sensitive read an other user may send under consent.
const readRef = "4.8.1"

// waitTimeout bounds the wait for a meter's answer through the router, or
// for a change of supplier to settle.
const waitTimeout = 2 * time.Minute

// profileParams are 4.8.1's parameters for the span from..to.
func profileParams(from, to time.Time) map[string]any {
	return map[string]any{"from": from.UTC().Format(time.RFC3339), "to": to.UTC().Format(time.RFC3339)}
}

// refusal judges err, the answer to a request the router must refuse: a
// refusal passes (a code other than want, when want is not nil, is
// noted); another error means the router could not be talked to.
func refusal(err error, what string, want *client.Error) (string, error) {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return "", err
	}
	if want != nil && !errors.Is(err, want) {
		return fmt.Sprintf("refused %s with %d %s (expected code %s)", what, ce.Status, ce.Code, want.Code), nil
	}
	return fmt.Sprintf("refused %s: %d %s", what, ce.Status, ce.Code), nil
}

// thirdParty returns the configured other user, or a skip.
func (e *routerEnv) thirdParty() (*client.Client, error) {
	tp := e.cfg.ThirdParty
	if tp == nil {
		return nil, skipf("no third party (an other user's client) configured")
	}
	if tp.Role() != "OU" {
		return nil, skipf("the third party's role is %s, not OU (other user)", tp.Role())
	}
	return tp, nil
}

// incoming returns the configured incoming supplier, or a skip.
func (e *routerEnv) incoming() (*IncomingSupplier, error) {
	ns := e.cfg.NewSupplier
	if ns == nil || ns.Client == nil {
		return nil, skipf("no incoming supplier configured")
	}
	return ns, nil
}

// wait waits for the router's delivery of command id to c, bounded by
// waitTimeout; a delivery other than a response fails.
func (e *routerEnv) wait(ctx context.Context, c *client.Client, id, what string) (client.Delivery, error) {
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	d, err := c.Wait(wctx, id, 0)
	if err != nil {
		return d, failf("no answer to %s (command %s) within %s: %v", what, id, waitTimeout, err)
	}
	if d.Kind != client.KindResponse {
		return d, failf("%s (command %s) was answered with a %s, not a response: %s", what, id, d.Kind, d.Detail)
	}
	return d, nil
}

// conNoConsent is RTR-CON-01: a third party's read without consent.
func conNoConsent(ctx context.Context, e *routerEnv) (string, error) {
	tp, err := e.thirdParty()
	if err != nil {
		return "", err
	}
	live, err := tp.Consents(ctx, client.ConsentQuery{Device: e.cfg.Target, Live: true})
	if err != nil {
		return "", failf("listing the third party's consents: %v", err)
	}
	for _, c := range live {
		if slices.Contains(c.Scope, readRef) {
			return "", skipf("the third party already holds consent %s for %s on %s: revoke it before the run", c.ID, readRef, e.cfg.Target)
		}
	}
	now := e.cfg.Now().UTC()
	rc, err := tp.Send(ctx, readRef, e.cfg.Target, profileParams(now.Add(-3*time.Hour), now))
	if err == nil {
		return "", failf("the router accepted a third party's read %s of %s without its consent (receipt %s)", readRef, e.cfg.Target, rc.ID)
	}
	return refusal(err, "a third party's read without consent", client.ErrNotOwner)
}

// urpRead is RTR-URP-01: the consent flow, then a consented read whose
// response only the third party decrypts.
func urpRead(ctx context.Context, e *routerEnv) (string, error) {
	tp, err := e.thirdParty()
	if err != nil {
		return "", err
	}
	if e.cfg.ReadCIN == nil {
		return "", skipf("no way to read the CIN the meter displays (ReadCIN): no consent, no read")
	}
	rc, err := tp.RequestCIN(ctx, e.cfg.Target, "")
	if err != nil {
		return "", failf("asking for a CIN (service request 9.1, sent by the router's access control broker): %v", err)
	}
	if _, err := e.wait(ctx, tp, rc.ID, "the CIN command"); err != nil {
		return "", err
	}
	cin, err := e.cfg.ReadCIN(ctx)
	if err != nil {
		return "", skipf("reading the CIN on the meter: %v", err)
	}
	cs, err := tp.ClaimConsent(ctx, e.cfg.Target, cin, []string{readRef}, 1)
	if err != nil {
		return "", failf("claiming consent with the CIN the meter displays: %v", err)
	}
	e.consent = cs.ID
	e.cleanup = append(e.cleanup, func(ctx context.Context) {
		// Best effort: the case's consent must not outlive the run.
		_, _ = tp.RevokeConsent(ctx, cs.ID, "conformance run finished")
	})
	now := e.cfg.Now().UTC()
	rc, err = tp.Send(ctx, readRef, e.cfg.Target, profileParams(now.Add(-3*time.Hour), now))
	if err != nil {
		return "", failf("the read under consent %s was refused: %v", cs.ID, err)
	}
	d, err := e.wait(ctx, tp, rc.ID, "the read under consent")
	if err != nil {
		return "", err
	}
	r, err := tp.Open(ctx, d.Body)
	if err != nil {
		return "", failf("the third party cannot check and decrypt its response (sections 6, 8): %v", err)
	}
	m := r.Message
	if m.URP == nil || m.URP.EUI != tp.EUI() {
		return "", failf("the response does not name the third party %s in its other-information (section 8)", tp.EUI())
	}
	if len(r.Plaintexts) == 0 {
		return "", failf("nothing in the response is encrypted to the third party (section 6)")
	}
	keys, err := tp.DeviceKeys(ctx, e.cfg.Target)
	if err != nil {
		return "", err
	}
	stranger, err := commands.NewECDHKeyFromECDSA(mustKey())
	if err != nil {
		return "", err
	}
	if _, err := commands.OpenPayload(ctx, stranger, keys.KA, m); err == nil {
		return "", failf("a key other than the third party's decrypts its response: it is not encrypted to the third party's key")
	}
	return fmt.Sprintf("consent %s; the response to %s (%d encrypted block(s)) opens with the third party's key only", cs.ID, readRef, len(r.Plaintexts)), nil
}

// conPeriod is RTR-CON-02: a read reaching back more than 13 months.
func conPeriod(ctx context.Context, e *routerEnv) (string, error) {
	tp, err := e.thirdParty()
	if err != nil {
		return "", err
	}
	now := e.cfg.Now().UTC()
	rc, err := tp.Send(ctx, readRef, e.cfg.Target, profileParams(now.AddDate(-1, -1, -1), now.AddDate(-1, -1, 0)))
	if err == nil {
		return "", failf("the router accepted a third party's read reaching back 13 months and a day (receipt %s)", rc.ID)
	}
	detail, err := refusal(err, "a read reaching back 13 months and a day", client.ErrConsentPeriod)
	if err == nil && e.consent == "" {
		detail += " (the third party held no consent: RTR-URP-01 did not obtain one)"
	}
	return detail, err
}

// cosNotOwner is RTR-COS-01: a 6.23 from the current supplier, which the
// registration data do not name as the incoming one.
func cosNotOwner(ctx context.Context, e *routerEnv) (string, error) {
	ns, err := e.incoming()
	if err != nil {
		return "", err
	}
	ch, err := e.cfg.Client.ChangeSupplier(ctx, e.cfg.Target, ns.DS, ns.KA, ns.PrepaymentKA)
	if err == nil {
		return "", failf("the router opened change of supplier %s of %s for %s, a supplier the registration data do not name", ch.ID, e.cfg.Target, e.cfg.Client.EUI())
	}
	return refusal(err, "a change of supplier requested by a supplier the registration data do not name", client.ErrNotOwner)
}

// cosAccepted is RTR-COS-02: the registered incoming supplier's 6.23.
func cosAccepted(ctx context.Context, e *routerEnv) (string, error) {
	ns, err := e.incoming()
	if err != nil {
		return "", err
	}
	ch, err := ns.Client.ChangeSupplier(ctx, e.cfg.Target, ns.DS, ns.KA, ns.PrepaymentKA)
	if err != nil {
		return "", failf("the incoming supplier's service request 6.23 was refused (the registration data must name %s for %s before the run): %v",
			ns.Client.EUI(), e.cfg.Target, err)
	}
	if ch.NewOwner != ns.Client.EUI() || ch.OldOwner != e.cfg.Client.EUI() || ch.Target != e.cfg.Target {
		return "", failf("change %s of %s from %s to %s, want of %s from %s to %s", ch.ID, ch.Target, ch.OldOwner, ch.NewOwner,
			e.cfg.Target, e.cfg.Client.EUI(), ns.Client.EUI())
	}
	e.change = ch.ID
	return fmt.Sprintf("change %s %s, %s to %s", ch.ID, ch.State, ch.OldOwner, ch.NewOwner), nil
}

// cosPending is RTR-COS-03: a second 6.23 while the first is open.
func cosPending(ctx context.Context, e *routerEnv) (string, error) {
	ns, err := e.incoming()
	if err != nil {
		return "", err
	}
	if e.change == "" {
		return "", skipf("RTR-COS-02 opened no change")
	}
	ch, err := ns.Client.ChangeSupplier(ctx, e.cfg.Target, ns.DS, ns.KA, ns.PrepaymentKA)
	if err == nil {
		return "", failf("the router opened a second change of supplier %s while %s was open", ch.ID, e.change)
	}
	if !errors.Is(err, client.ErrChangePending) {
		if st, serr := ns.Client.ChangeOfSupplier(ctx, e.change); serr == nil && st.Settled() {
			return "", skipf("change %s settled (%s) before the second request could be made (%v)", e.change, st.State, err)
		}
	}
	return refusal(err, "a second change of supplier while one is open", client.ErrChangePending)
}

// cosOldSupplier is RTR-COS-04: once the change is applied, the old
// supplier's critical command.
func cosOldSupplier(ctx context.Context, e *routerEnv) (string, error) {
	ns, err := e.incoming()
	if err != nil {
		return "", err
	}
	if e.change == "" {
		return "", skipf("RTR-COS-02 opened no change")
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	st, err := ns.Client.WaitChange(wctx, e.change)
	cancel()
	if err != nil {
		return "", failf("change %s did not settle within %s: %v", e.change, waitTimeout, err)
	}
	if st.State != "applied" {
		return "", skipf("change %s settled %s (%s), not applied: the meter kept its supplier", e.change, st.State, st.Detail)
	}
	e.applied = true
	pc, err := e.cfg.Client.ServiceRequest(ctx, criticalRef, e.cfg.Target, nil)
	if err != nil {
		return refusal(err, "the old supplier's service request "+criticalRef, client.ErrNotOwner)
	}
	signed, err := e.cfg.Client.Sign(pc)
	if err != nil {
		return "", err
	}
	return e.refused(ctx, signed, "the old supplier's critical command after the change", client.ErrNotOwner)
}

// cosNewSupplier is RTR-COS-05: the new supplier's critical command goes
// through and the meter answers it.
func cosNewSupplier(ctx context.Context, e *routerEnv) (string, error) {
	ns, err := e.incoming()
	if err != nil {
		return "", err
	}
	if !e.applied {
		return "", skipf("RTR-COS-04 saw no change applied")
	}
	rc, err := ns.Client.Send(ctx, criticalRef, e.cfg.Target, nil)
	if err != nil {
		return "", failf("the new supplier's critical command %s was refused: %v", criticalRef, err)
	}
	d, err := e.wait(ctx, ns.Client, rc.ID, "the new supplier's critical command")
	if err != nil {
		return "", err
	}
	if _, err := ns.Client.Open(ctx, d.Body); err != nil {
		return "", failf("the new supplier cannot check the meter's response: %v", err)
	}
	return fmt.Sprintf("command %s executed by the meter, its response checked by the new supplier", rc.ID), nil
}
