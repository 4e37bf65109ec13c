package conformance

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// RouterConfig configures a run against a router, through its API as a DCC
// user holding the import supplier role (IS) for Target.
type RouterConfig struct {
	// Client is the user's client of the router (its DCCKI certificate,
	// the router's URL). Required.
	Client *client.Client
	// Signer is the user's digital-signing key, the one its SMKI DS
	// certificate certifies. Required.
	Signer crypto.Signer
	// Target is an electricity meter the user supplies. Required.
	Target smki.EUI
	// Name describes the router in the reports (its URL).
	Name string
	// SignerRevoked says the user's DS certificate has been revoked for
	// this run (the second of two runs): only RTR-REV-01 runs, which
	// expects every signed command refused. Without it, RTR-REV-01 is
	// skipped.
	SignerRevoked bool
	// ThirdParty is an other user's (OU) client of the router, with its
	// key-agreement key (client.Config.KeyAgreement) and the repository
	// (client.Config.Repository), for the consent and unknown-remote-party
	// cases (RTR-CON-*, RTR-URP-01). Nil: those cases are skipped.
	ThirdParty *client.Client
	// ReadCIN returns the customer identification number Target displays
	// once the third party asked for one: the consumer reading it back
	// (a person at a test meter, or the test meter's own display). Nil:
	// RTR-URP-01, which needs a consent, is skipped.
	ReadCIN func(ctx context.Context) (string, error)
	// NewSupplier is the incoming supplier of the change of supplier
	// cases (RTR-COS-*), which run last: the registration data must name
	// it as Target's supplier, effective before the run. Nil: those cases
	// are skipped. They leave Target supplied by it.
	NewSupplier *IncomingSupplier
	// Only, when not nil, selects the cases to run by id (Select).
	Only func(id string) bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// IncomingSupplier is the supplier a change of supplier hands Target to.
type IncomingSupplier struct {
	// Client is its client of the router, with its digital-signing key
	// (client.Config.Signer). Required.
	Client *client.Client
	// DS, KA and PrepaymentKA are the serial numbers (hex) of its
	// organisation certificates in the repository, the ones service
	// request 6.23 installs on the meter. Required.
	DS, KA, PrepaymentKA string
}

// revokedCase is the case that runs, alone, when the signer is revoked.
const revokedCase = "RTR-REV-01"

// RunRouter runs the router cases. They submit real commands for Target:
// the router forwards those it accepts (Enable Supply, which leaves the
// supply on).
func RunRouter(ctx context.Context, cfg RouterConfig) (*Report, error) {
	if cfg.Client == nil || cfg.Signer == nil || cfg.Target.IsZero() {
		return nil, errors.New("conformance: a router run needs a client, the user's signer and a target device")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	env := &routerEnv{cfg: cfg}
	rep := &Report{Target: TargetRouter, Name: cfg.Name, Started: cfg.Now()}
	only := cfg.Only
	if cfg.SignerRevoked {
		only = func(id string) bool { return id == revokedCase && (cfg.Only == nil || cfg.Only(id)) }
	}
	runSteps(ctx, rep, routerSteps, env, only, cfg.Now)
	for _, f := range env.cleanup {
		f(context.WithoutCancel(ctx))
	}
	rep.Duration = cfg.Now().Sub(rep.Started)
	return rep, nil
}

type routerEnv struct {
	cfg RouterConfig
	// accepted is the signed command RTR-01 had accepted, for the replay.
	accepted []byte
	// consent is the consent RTR-URP-01 obtained ("" for none).
	consent string
	// change is the change of supplier RTR-COS-02 opened ("" for none);
	// applied is set once RTR-COS-04 saw it applied.
	change  string
	applied bool
	// cleanup runs after the cases: what they must not leave behind.
	cleanup []func(context.Context)
}

// criticalRef is the critical service request the router cases send:
// Enable Supply (7.1, ECS42), which an import supplier may send.
const criticalRef = "7.1"

// preCommand asks the router for the pre-command of criticalRef.
func (e *routerEnv) preCommand(ctx context.Context) (*client.PreCommand, *commands.Message, error) {
	pc, err := e.cfg.Client.ServiceRequest(ctx, criticalRef, e.cfg.Target, nil)
	if err != nil {
		return nil, nil, failf("service request %s: %v", criticalRef, err)
	}
	m, err := commands.Parse(pc.Message)
	if err != nil {
		return nil, nil, failf("the router's pre-command does not parse: %v", err)
	}
	if !pc.Critical || m.Form() != commands.FormPreCommand {
		return nil, nil, failf("service request %s (critical) answered with a %s, critical=%v; want a pre-command, ending after the payload with no signature field (section 3)",
			criticalRef, m.Form(), pc.Critical)
	}
	return pc, m, nil
}

// refused submits b, which the router must refuse; want, when not nil,
// is the refusal expected (any refusal passes, a different one is noted).
func (e *routerEnv) refused(ctx context.Context, b []byte, what string, want *client.Error) (string, error) {
	rc, err := e.cfg.Client.Submit(ctx, b)
	if err == nil {
		return "", failf("the router accepted %s (receipt %s): it must refuse it before forwarding anything", what, rc.ID)
	}
	return refusal(err, what, want)
}

func rstep(id, section, title string, sev Severity, run func(context.Context, *routerEnv) (string, error)) step[*routerEnv] {
	return step[*routerEnv]{Case: Case{ID: id, Section: section, Title: title, Target: TargetRouter, Severity: sev}, run: run}
}

// routerSteps are the router cases, in the order they run.
var routerSteps = []step[*routerEnv]{
	rstep("RTR-PRE-01", "gbcs-security 3, 4", "a critical service request is answered with a pre-command; signed by the user, it is accepted", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			pc, _, err := e.preCommand(ctx)
			if err != nil {
				return "", err
			}
			signed, err := e.cfg.Client.Sign(pc)
			if err != nil {
				return "", err
			}
			rc, err := e.cfg.Client.Submit(ctx, signed)
			if err != nil {
				return "", failf("the signed pre-command was refused: %v", err)
			}
			e.accepted = signed
			return "accepted as " + rc.ID, nil
		}),
	rstep("RTR-SIG-01", "gbcs-security 4", "an unsigned critical command (the pre-command as it came) is refused", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			pc, _, err := e.preCommand(ctx)
			if err != nil {
				return "", skipf("no pre-command: %v", err)
			}
			return e.refused(ctx, pc.Message, "an unsigned critical command", client.ErrSignature)
		}),
	rstep("RTR-SIG-02", "gbcs-security 4", "a critical command signed with a key other than the user's is refused", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			_, m, err := e.preCommand(ctx)
			if err != nil {
				return "", skipf("no pre-command: %v", err)
			}
			if err := commands.SignPreCommand(rand.Reader, mustKey(), m); err != nil {
				return "", err
			}
			b, err := m.Marshal()
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a command signed with a stranger's key", client.ErrSignature)
		}),
	rstep("RTR-SIG-03", "gbcs-security 4", "a critical command whose signature has one bit of s flipped is refused", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			_, m, err := e.preCommand(ctx)
			if err != nil {
				return "", skipf("no pre-command: %v", err)
			}
			if err := commands.SignPreCommand(rand.Reader, e.cfg.Signer, m); err != nil {
				return "", err
			}
			m.Signature[63] ^= 1
			b, err := m.Marshal()
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a command with an altered signature", client.ErrSignature)
		}),
	rstep("RTR-SIG-04", "gbcs-security 4", "a critical command carrying a DER signature instead of raw r||s is refused", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			_, m, err := e.preCommand(ctx)
			if err != nil {
				return "", skipf("no pre-command: %v", err)
			}
			data, err := m.SignedData()
			if err != nil {
				return "", err
			}
			der, err := signDER(e.cfg.Signer, data)
			if err != nil {
				return "", err
			}
			b := append(append(append([]byte{0xDF}, data...), byte(len(der))), der...)
			return e.refused(ctx, b, "a command with a DER signature", nil)
		}),
	rstep("RTR-CTR-01", "gbcs-security 7", "the signed command RTR-PRE-01 had accepted, submitted again, is refused as a replay", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			if e.accepted == nil {
				return "", skipf("RTR-PRE-01 had no command accepted")
			}
			return e.refused(ctx, e.accepted, "a replayed command", client.ErrReplay)
		}),
	rstep("RTR-CTR-02", "gbcs-security 7", "a signed command whose counter is 2^40 above the last forwarded is refused (an error for a router, our rule)", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			_, m, err := e.preCommand(ctx)
			if err != nil {
				return "", skipf("no pre-command: %v", err)
			}
			m.Counter += 1 << 40
			if err := commands.SignPreCommand(rand.Reader, e.cfg.Signer, m); err != nil {
				return "", err
			}
			b, err := m.Marshal()
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a command with a counter 2^40 ahead", client.ErrCounterAhead)
		}),
	rstep("RTR-ROLE-01", "gbcs-security 1; service-requests.tsv", "a service request the user's role may not send (9.1, other users only) is refused", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			if e.cfg.Client.Role() == "OU" {
				return "", skipf("the user is an other user, eligible for 9.1")
			}
			_, err := e.cfg.Client.ServiceRequest(ctx, "9.1", e.cfg.Target, map[string]any{"cin": "1234"})
			if err == nil {
				return "", failf("the router built service request 9.1 for a %s user", e.cfg.Client.Role())
			}
			var ce *client.Error
			if !errors.As(err, &ce) {
				return "", err
			}
			return fmt.Sprintf("refused: %d %s", ce.Status, ce.Code), nil
		}),
	rstep("RTR-ANOM-01", "gbcs-security 10", "with the user's own threshold of one Enable Supply an hour, the next ones are quarantined, not forwarded", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			const id = "metertrust-conformance-anom-01"
			th := anomaly.Threshold{ID: id, Scope: anomaly.ScopeUserService, ServiceRef: criticalRef, Limit: 1, Window: time.Hour}
			if _, err := e.cfg.Client.SetThreshold(ctx, th); err != nil {
				return "", failf("setting the user's own threshold (section 10: users set their own): %v", err)
			}
			defer func() {
				// Best effort: the case's threshold must not outlive it.
				_ = e.cfg.Client.DeleteThreshold(context.WithoutCancel(ctx), id, "conformance run finished")
			}()
			for i := range 3 {
				pc, _, err := e.preCommand(ctx)
				if err != nil {
					return "", err
				}
				signed, err := e.cfg.Client.Sign(pc)
				if err != nil {
					return "", err
				}
				_, err = e.cfg.Client.Submit(ctx, signed)
				if errors.Is(err, client.ErrQuarantined) {
					return fmt.Sprintf("command %d of the hour quarantined", i+1), nil
				}
				if err != nil {
					return "", failf("command %d refused, but not as quarantined: %v", i+1, err)
				}
			}
			return "", failf("three Enable Supply commands accepted under a threshold of one an hour: none quarantined")
		}),
	rstep("RTR-CON-01", "gbcs-security 11; decision 015", "a third party's read (4.8.1) without the consumer's consent is refused (not-owner)", SeverityError, conNoConsent),
	rstep("RTR-URP-01", "gbcs-security 6, 8, 11", "a third party's read under consent (CIN shown on the meter, claimed) is answered with the response encrypted to the third party's key: it decrypts it, another key does not", SeverityError, urpRead),
	rstep("RTR-CON-02", "gbcs-security 11; decision 015", "a third party's read reaching back more than 13 months is refused (consent-period)", SeverityError, conPeriod),
	rstep("RTR-COS-01", "gbcs-security 9; decision 014", "a change of supplier (6.23) requested by a supplier the registration data do not name is refused (not-owner)", SeverityError, cosNotOwner),
	rstep("RTR-COS-02", "gbcs-security 9; decision 014", "the change of supplier requested by the incoming supplier the registration data name is accepted", SeverityError, cosAccepted),
	rstep("RTR-COS-03", "gbcs-security 9; decision 014", "a second change of supplier while one is open is refused (change-pending)", SeverityError, cosPending),
	rstep("RTR-COS-04", "gbcs-security 9; decision 014", "once the change is applied, the old supplier's critical command is refused (not-owner)", SeverityError, cosOldSupplier),
	rstep("RTR-COS-05", "gbcs-security 9; decision 014", "once the change is applied, the new supplier's critical command is forwarded and answered by the meter", SeverityError, cosNewSupplier),
	rstep(revokedCase, "gbcs-security 2, 4", "once the user's DS certificate is revoked, its signed critical command is refused (run with the signer revoked)", SeverityError,
		func(ctx context.Context, e *routerEnv) (string, error) {
			if !e.cfg.SignerRevoked {
				return "", skipf("runs in a second run, once the user's DS certificate is revoked (--signer-revoked)")
			}
			pc, _, err := e.preCommand(ctx)
			if err != nil {
				return "", err
			}
			signed, err := e.cfg.Client.Sign(pc)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, signed, "a command signed with a revoked key", client.ErrCertPath)
		}),
}
