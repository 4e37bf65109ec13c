package demo

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
)

// HistorySummary is the third party's read of 13 months of half-hourly
// data under its consent.
type HistorySummary struct {
	Meter string `json:"meter"`
	// From and To bound the half hours read: the consented data period,
	// 13 months back from the read, to the last completed half hour.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Requests is how many ECS22b reads it took, each at most
	// MaxPerRequest half hours (what one response carries, see
	// client.MaxHalfHours); Intervals the half hours received, all of
	// the period, in order, with no gap.
	Requests      int `json:"requests"`
	MaxPerRequest int `json:"maxIntervalsPerRequest"`
	Intervals     int `json:"intervals"`
	// Bytes is the size of the responses; Largest the largest one,
	// sent whole (within the meter's one-message limit, not segmented).
	Bytes   int `json:"bytes"`
	Largest int `json:"largestResponseBytes"`
	// Wh is the energy of all the half hours.
	Wh uint64 `json:"wh"`
	// RefusedEarlier says a read reaching one half hour further back
	// was refused by the router (consent-period).
	RefusedEarlier bool `json:"refusedEarlier"`
	// RouterCannotRead and SupplierCannotRead say the router's ACB key
	// and the supplier's KA key fail to decrypt the responses;
	// StoredWithoutPlaintext that the responses the router stores hold
	// none of the plaintext.
	RouterCannotRead       bool `json:"routerCannotRead"`
	SupplierCannotRead     bool `json:"supplierCannotRead"`
	StoredWithoutPlaintext bool `json:"storedWithoutPlaintext"`
	// Seconds is the time the reads took, requests to decrypted data.
	Seconds float64 `json:"seconds"`
}

// actHistory: the third party, holding the consumer's consent to 4.8.1,
// reads all the half-hourly data the consent's data period allows, 13
// months back from now, in as few reads as the meter's one-message
// responses allow; it alone can decrypt them.
func (r *run) actHistory(ctx context.Context) error {
	s := r.sys
	third, sup := s.Party(inproc.PartyThirdParty), s.Party(inproc.PartySupplier)
	m := s.Meters[1] // the consented meter of actThirdParty
	sum := &r.sum.History
	sum.Meter, sum.MaxPerRequest = m.String(), client.MaxHalfHours(client.Electricity)
	const hh = 30 * time.Minute
	// The router checks the period when the read is built and when it is
	// submitted, the meter keeps the half hours of the 13 months before
	// its clock: a read across a half-hour boundary would see the period
	// move by one half hour. Wait for the boundary when it is seconds
	// away.
	if left := time.Until(time.Now().Truncate(hh).Add(hh)); left < 5*time.Second {
		time.Sleep(left + time.Second)
	}
	start := time.Now()
	now := start.UTC()
	sum.From = router.DataPeriodStart(now).Truncate(hh)
	if sum.From.Before(router.DataPeriodStart(now)) {
		sum.From = sum.From.Add(hh)
	}
	sum.To = now.Truncate(hh)
	spans := client.ProfileSpans(client.Electricity, sum.From, sum.To)
	r.say("The third party reads meter %s's half hours of the last %d months, all its consent's data period allows", m, router.ConsentDataMonths)
	r.detail("%s to %s: %d half hours; one ECS22b response carries at most %d (168 days: its ciphered block must fit a DLMS octet-string, the message one two-byte MAC header length)",
		sum.From.Format(time.DateTime), sum.To.Format(time.DateTime), int(sum.To.Sub(sum.From)/hh), sum.MaxPerRequest)
	earlier := client.Span{From: sum.From.Add(-hh), To: sum.From.Add(hh)}
	_, _, err := r.third.request(ctx, "4.8.1", m, earlier.ProfileParams(client.Electricity))
	if err := r.refused(err, router.ErrConsentPeriod.Code()); err != nil {
		return fmt.Errorf("a read from %s, one half hour before the data period: %w", earlier.From, err)
	}
	sum.RefusedEarlier = true
	var ids []string
	for _, sp := range spans {
		rc, _, err := r.third.request(ctx, "4.8.1", m, sp.ProfileParams(client.Electricity))
		if err != nil {
			return fmt.Errorf("the read of %s to %s: %w", sp.From, sp.To, err)
		}
		r.accepted()
		ids = append(ids, rc.ID)
	}
	ds, err := r.third.await(ctx, 60*time.Second, ids...)
	if err != nil {
		return err
	}
	keys, err := r.keysOf(ctx, m)
	if err != nil {
		return err
	}
	next := sum.From
	sum.RouterCannotRead, sum.SupplierCannotRead, sum.StoredWithoutPlaintext = true, true, true
	for i, d := range ds {
		if d.Kind != router.DeliveryResponse {
			return fmt.Errorf("%w: read %d ended in %s: %s", ErrAPI, i+1, d.Kind, d.Detail)
		}
		r.sum.Forwarded++
		sum.Requests++
		sum.Bytes += len(d.Body)
		sum.Largest = max(sum.Largest, len(d.Body))
		resp, err := openResponse(ctx, r.third.eui, third.KA, keys, d.Body)
		if err != nil {
			return fmt.Errorf("the third party opening read %d: %w", i+1, err)
		}
		pl, err := readHalfHourProfile(resp)
		if err != nil {
			return fmt.Errorf("read %d: %w", i+1, err)
		}
		if want := int(spans[i].To.Sub(spans[i].From) / hh); len(pl.Records) != want {
			return fmt.Errorf("%w: read %d carried %d half hours, want %d", ErrAPI, i+1, len(pl.Records), want)
		}
		for _, rec := range pl.Records {
			if !rec.At().Equal(next) {
				return fmt.Errorf("%w: read %d: a half hour at %s, want %s: a gap or a repeat", ErrAPI, i+1, rec.At().UTC(), next)
			}
			next = next.Add(hh)
			sum.Wh += uint64(rec.Value)
		}
		sum.Intervals += len(pl.Records)
		if _, err := commands.OpenPayload(ctx, s.ACBKeyAgreement(), keys.ka, resp.msg); err == nil {
			sum.RouterCannotRead = false
		}
		if _, err := commands.OpenPayload(ctx, sup.KA, keys.ka, resp.msg); err == nil {
			sum.SupplierCannotRead = false
		}
		stored, err := s.DB.Router().RouterCommand(ctx, ids[i])
		if err != nil {
			return err
		}
		if len(stored.Response) == 0 || containsRun(stored.Response, resp.plain[0], 32) {
			sum.StoredWithoutPlaintext = false
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	if !next.Equal(sum.To) {
		return fmt.Errorf("%w: the half hours end at %s, want %s", ErrAPI, next, sum.To)
	}
	if !sum.RouterCannotRead || !sum.SupplierCannotRead || !sum.StoredWithoutPlaintext {
		return fmt.Errorf("%w: the third party's data was readable outside it: router %v, supplier %v, stored %v",
			ErrAPI, !sum.RouterCannotRead, !sum.SupplierCannotRead, !sum.StoredWithoutPlaintext)
	}
	r.detail("%d reads, %d half hours in order with no gap, %d Wh; %d response bytes (largest %d, one message each) in %.2f s",
		sum.Requests, sum.Intervals, sum.Wh, sum.Bytes, sum.Largest, sum.Seconds)
	r.detail("decrypted with the third party's KA key alone: the router's ACB key and the supplier's KA key fail, and the responses the router stores hold none of the plaintext")
	return nil
}

// containsRun reports whether hay holds any n-byte run of needle.
func containsRun(hay, needle []byte, n int) bool {
	for i := 0; i+n <= len(needle); i += n {
		if bytes.Contains(hay, needle[i:i+n]) {
			return true
		}
	}
	return false
}
