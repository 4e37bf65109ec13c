package inproc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// ErrConfig is returned when a Config is not usable; the message says which
// field is wrong.
var ErrConfig = errors.New("inproc: invalid configuration")

// ErrManifest is returned when a data directory's inproc.json cannot be
// read back.
var ErrManifest = errors.New("inproc: unreadable manifest")

// Config says what system to assemble. The zero value is valid: a temporary
// directory, the embedded store, the default parties, no meters, no
// thresholds, no listeners (the router's pipeline and forwarder still run,
// for in-process calls).
type Config struct {
	// DataDir holds the store, the keys and the parties' files. Empty: a
	// temporary directory, removed by Close. A directory with an
	// inproc.json manifest is reused (see the package documentation).
	DataDir string
	// StoreDSN is a store DSN (postgres://... or sqlite:PATH); empty for
	// the embedded store DataDir/metertrust.db.
	StoreDSN string
	// KMS is the CA key manager URI (see custody.Open); empty for key
	// files under DataDir/keys.
	KMS string

	// Meters is the number of reference meters issued from the batch
	// Device CA (two certificates each) and put in the fleet and the
	// router's registry; zero for none. Ignored when DataDir is reused.
	Meters int
	// MeterKind is the kind of every meter (default electricity).
	MeterKind device.Kind
	// GenerateMeters, for load tests and benchmarks, makes the Meters
	// meters with fresh keys and no certificates (device.Fleet.Generate)
	// instead of issuing them from the batch Device CA: far faster for
	// large fleets, but the repository holds no device certificates for
	// them and a reused data directory has no meters.
	GenerateMeters bool
	// FirstMeter is the EUI-64 of the first meter; zero for the CA's
	// default (F0-00-00-00-00-00-00-01 onwards).
	FirstMeter smki.EUI
	// Transport, when set, makes the router's device transport in place
	// of the in-process fleet: a benchmark's recording transport, or an
	// HTTP transport to a communications service provider. It is given
	// the fleet.
	Transport func(*device.Fleet) (router.Transport, error)
	// WrapACBKey, when set, wraps the ACB key-agreement key the router is
	// given (a benchmark counting ECDH operations).
	WrapACBKey func(router.KeyAgreement) router.KeyAgreement
	// Registry receives the metrics of every service (the router's, the
	// store's, the CA's and the APIs'); nil for none but the router's, in
	// a registry of its own.
	Registry *prometheus.Registry
	// Batch names the batch Device CA (default "BATCH1"). Its quota is
	// two certificates per meter plus two spare, so the batch stays open
	// until CloseBatch.
	Batch string
	// Parties are the DCC parties and DCC users to create; nil for
	// DefaultParties. Exactly one must have the access control broker
	// role. Ignored when DataDir is reused.
	Parties []PartySpec
	// Thresholds are set by the DCC operator when the system is created
	// (not when it is reused).
	Thresholds []anomaly.Threshold

	// RouterAddr, OperatorAddr, RepositoryAddr and CAAddr are the
	// addresses the router (HTTPS, mutual TLS), the operator API and the
	// certificate repository (HTTP) and the CA service (HTTPS, mutual TLS)
	// listen on, such as "127.0.0.1:0"; empty for no listener.
	RouterAddr, OperatorAddr, RepositoryAddr, CAAddr string

	// Logger receives the services' logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Rand is the randomness for keys, tokens and serials; nil for
	// crypto/rand.
	Rand io.Reader
}

// PartySpec describes one party: a DCC party (the access control broker,
// the transitional change-of-supplier party) or a DCC user (supplier,
// network operator, other user).
type PartySpec struct {
	// Name is the short name the party is looked up by ("supplier"); it
	// also names its DCCKI files under tls/.
	Name string `json:"name"`
	// Organisation is the CN of its organisation certificates.
	Organisation string `json:"organisation"`
	// EUI is its organisation EUI-64.
	EUI smki.EUI `json:"eui"`
	// Role is its GBCS Remote Party Role.
	Role smki.Role `json:"role"`
	// UserRole is its DCC User Role when it calls the router; empty for a
	// DCC party, which gets no DCCKI client certificate.
	UserRole smki.UserRole `json:"userRole,omitempty"`
	// Usages are the organisation certificates it holds, one key each.
	Usages []ca.Usage `json:"usages"`
	// Anchor puts its certificates in the meters' trust anchors under its
	// role; a supplier or network operator anchored on the meters owns
	// them in the router's registry.
	Anchor bool `json:"anchor,omitempty"`
}

// The EUIs of the default parties.
var (
	EUIAccessControlBroker = smki.MustParseEUI("90B3D51F30000004")
	EUITransitionalCoS     = smki.MustParseEUI("90B3D51F30000005")
	EUISupplier            = smki.MustParseEUI("90B3D51F30010000")
	EUINetworkOperator     = smki.MustParseEUI("90B3D51F30020000")
	EUIThirdParty          = smki.MustParseEUI("90B3D51F300300F1")
)

// The names of the default parties.
const (
	PartyACB             = "acb"
	PartyTCoS            = "tcos"
	PartySupplier        = "supplier"
	PartyNetworkOperator = "network-operator"
	PartyThirdParty      = "third-party"
)

// DefaultParties are the parties of the demo: the DCC's access control
// broker (KA) and transitional change-of-supplier party (DS, KA); an import
// supplier (DS, KA, prepayment top-up KA) and an electricity distributor
// (DS, KA), both anchored on the meters; and an other user, a third party
// reading data under consent (KA, to which its responses are encrypted).
func DefaultParties() []PartySpec {
	return []PartySpec{
		{Name: PartyACB, Organisation: "DCC Access Control Broker", EUI: EUIAccessControlBroker, Role: smki.RoleAccessControlBroker,
			Usages: []ca.Usage{ca.UsageKA}, Anchor: true},
		{Name: PartyTCoS, Organisation: "DCC Transitional CoS", EUI: EUITransitionalCoS, Role: smki.RoleTransitionalCoS,
			Usages: []ca.Usage{ca.UsageDS, ca.UsageKA}, Anchor: true},
		{Name: PartySupplier, Organisation: "Demo Energy", EUI: EUISupplier, Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier,
			Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}, Anchor: true},
		{Name: PartyNetworkOperator, Organisation: "Demo Networks", EUI: EUINetworkOperator, Role: smki.RoleNetworkOperator,
			UserRole: smki.UserElectricityDistributor, Usages: []ca.Usage{ca.UsageDS, ca.UsageKA}, Anchor: true},
		{Name: PartyThirdParty, Organisation: "Demo Insights", EUI: EUIThirdParty, Role: smki.RoleOther, UserRole: smki.UserOther,
			Usages: []ca.Usage{ca.UsageKA}},
	}
}

// DefaultBatch is the batch Device CA's name when Config.Batch is empty.
const DefaultBatch = "BATCH1"

// MaxMeters bounds Config.Meters: the fleet is held in memory.
const MaxMeters = 1_000_000

func (c *Config) validate() error {
	if c.Meters < 0 || c.Meters > MaxMeters {
		return fmt.Errorf("%w: Meters %d: want 0 to %d", ErrConfig, c.Meters, MaxMeters)
	}
	if c.Batch == "" {
		c.Batch = DefaultBatch
	}
	if c.Parties == nil {
		c.Parties = DefaultParties()
	}
	return validateParties(c.Parties)
}

func validateParties(ps []PartySpec) error {
	var names []string
	var euis []smki.EUI
	acbs := 0
	for i, p := range ps {
		switch {
		case !validName(p.Name):
			return fmt.Errorf("%w: party %d: name %q: want 1-32 lower-case letters, digits or '-'", ErrConfig, i, p.Name)
		case slices.Contains(names, p.Name):
			return fmt.Errorf("%w: party %q named twice", ErrConfig, p.Name)
		case p.EUI.IsZero():
			return fmt.Errorf("%w: party %q has no EUI", ErrConfig, p.Name)
		case slices.Contains(euis, p.EUI):
			return fmt.Errorf("%w: party %q: EUI %s used twice", ErrConfig, p.Name, p.EUI)
		case len(p.Usages) == 0:
			return fmt.Errorf("%w: party %q has no key usages", ErrConfig, p.Name)
		}
		for _, u := range p.Usages {
			if _, err := ca.ParseUsage(string(u)); err != nil {
				return fmt.Errorf("%w: party %q: %w", ErrConfig, p.Name, err)
			}
		}
		if p.Role == smki.RoleAccessControlBroker {
			acbs++
			if !slices.Contains(p.Usages, ca.UsageKA) {
				return fmt.Errorf("%w: party %q: the access control broker needs a KA key", ErrConfig, p.Name)
			}
		}
		names, euis = append(names, p.Name), append(euis, p.EUI)
	}
	if acbs != 1 {
		return fmt.Errorf("%w: %d parties with the access control broker role, want exactly 1", ErrConfig, acbs)
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
