package commands

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/smki"
)

func TestCatalogueEveryRowParsed(t *testing.T) {
	// Every data line of usecases.tsv and of table E (messages.tsv) is one
	// row; a code in both, or repeated identically in the published table,
	// is one use case.
	codes := map[string]bool{}
	for _, tsv := range []string{useCasesTSV, messagesTSV} {
		for _, l := range strings.Split(tsv, "\n") {
			if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "code\t") {
				code, _, _ := strings.Cut(l, "\t")
				codes[code] = true
			}
		}
	}
	if got := len(UseCases()); got != len(codes) {
		t.Errorf("%d use cases parsed, %d distinct codes in usecases.tsv and messages.tsv", got, len(codes))
	}
	// Every line with a tab in service-requests.tsv is a row (the one name
	// broken over lines continues its row).
	rows := 0
	for _, l := range strings.Split(serviceRequestsTSV, "\n") {
		if strings.Contains(l, "\t") && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "srv\t") {
			rows++
		}
	}
	if got := len(ServiceRequests()); got != rows {
		t.Errorf("%d service requests parsed, %d rows in service-requests.tsv", got, rows)
	}
	for _, u := range UseCases() {
		for _, ref := range u.ServiceRefs {
			if len(UseCasesForService(ref)) == 0 {
				t.Errorf("%s: service reference %s finds nothing", u.Name, ref)
			}
		}
	}
}

func TestCatalogueLookups(t *testing.T) {
	tests := []struct {
		code        MessageCode
		name        string
		critical    bool
		eligible    []smki.UserRole
		notEligible []smki.UserRole
	}{
		{0x00B3, "ECS04b", true, []smki.UserRole{smki.UserImportSupplier, smki.UserGasSupplier}, []smki.UserRole{smki.UserOther, smki.UserElectricityDistributor}},
		{0x0027, "ECS17b", false, []smki.UserRole{smki.UserImportSupplier, smki.UserGasTransporter}, []smki.UserRole{smki.UserExportSupplier}},
		{0x0037, "ECS22b", false, []smki.UserRole{smki.UserOther, smki.UserElectricityDistributor}, []smki.UserRole{smki.UserRegisteredSupplierAgent}},
		{0x0060, "ECS66", false, []smki.UserRole{smki.UserOther}, []smki.UserRole{smki.UserExportSupplier}},
		{0x0061, "ECS68", true, nil, []smki.UserRole{smki.UserImportSupplier}},
		{0x004F, "ECS42", true, []smki.UserRole{smki.UserImportSupplier}, []smki.UserRole{smki.UserGasSupplier}},
		{0x0062, "ECS70", true, []smki.UserRole{smki.UserImportSupplier, smki.UserGasSupplier}, []smki.UserRole{smki.UserOther}},
		{0x0102, "CS02b", true, nil, []smki.UserRole{smki.UserImportSupplier}},
		{0x0107, "CS02b", true, nil, nil},
		{0x0008, "CS02a", false, nil, nil},
		{0x00AC, "ECS25a", false, []smki.UserRole{smki.UserElectricityDistributor}, []smki.UserRole{smki.UserOther}},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			u, ok := LookupCode(tt.code)
			if !ok {
				t.Fatalf("LookupCode(%s) found nothing", tt.code)
			}
			if u.Name != tt.name || u.Critical() != tt.critical {
				t.Errorf("got %s critical=%t, want %s critical=%t", u.Name, u.Critical(), tt.name, tt.critical)
			}
			for _, r := range tt.eligible {
				if !u.Eligible(r) {
					t.Errorf("%s not eligible for %s", u.Name, r)
				}
			}
			for _, r := range tt.notEligible {
				if u.Eligible(r) {
					t.Errorf("%s eligible for %s", u.Name, r)
				}
			}
			found := false
			for _, v := range LookupUseCase(strings.ToLower(tt.name)) {
				found = found || v.Code == tt.code
			}
			if !found {
				t.Errorf("LookupUseCase(%q) misses %s", tt.name, tt.code)
			}
		})
	}
	t.Run("unknown code", func(t *testing.T) {
		if _, ok := LookupCode(0xFFFF); ok {
			t.Error("found 0xFFFF")
		}
	})
	t.Run("CS02b has ten codes", func(t *testing.T) {
		if got := len(LookupUseCase("CS02b")); got != 10 {
			t.Errorf("%d CS02b codes, want 10", got)
		}
	})
	t.Run("service request variants", func(t *testing.T) {
		s, ok := LookupServiceRequest("8.2")
		if !ok || !strings.HasPrefix(s.Name, "Read Inventory") || !strings.Contains(s.Name, "Current and Future Suppliers") || len(s.Roles) != 7 {
			t.Errorf("8.2 = %+v, %t", s, ok)
		}
		s, ok = LookupServiceRequest("7.16")
		if !ok || !s.Critical || len(s.Roles) != 0 || s.Eligible(smki.UserImportSupplier) {
			t.Errorf("7.16 = %+v, %t", s, ok)
		}
		if _, ok := LookupServiceRequest("99.9"); ok {
			t.Error("found 99.9")
		}
		names := map[string]bool{}
		for _, u := range UseCasesForService("1.1.1") {
			names[u.Name] = true
		}
		if !names["ECS01a"] || !names["GCS01a"] || !names["ECS01c"] || len(names) != 3 {
			t.Errorf("UseCasesForService(1.1.1) = %v", names)
		}
		if got := UseCasesForService("1.1"); len(got) != 3 {
			t.Errorf("UseCasesForService(1.1) = %d use cases, want 3", len(got))
		}
	})
}

func TestCatalogueBadTables(t *testing.T) {
	good := "code\tusecase\tcategory\tservice_ref\ttitle\n"
	goodSR := "srv\tcritical\troles\tname\n"
	tests := []struct{ name, uc, sr string }{
		{"use case header", "code\tname\n", goodSR},
		{"use case fields", good + "0x0001\tA\tB\n", goodSR},
		{"use case code", good + "0001\tA\tB\t1.1\tT\n", goodSR},
		{"conflicting repeat", good + "0x0001\tA\tB\t1.1\tT\n0x0001\tA\tB\t1.1\tU\n", goodSR},
		{"service header", good, "srv\tx\n"},
		{"service critical", good, goodSR + "1.1\tMaybe\tIS\tX\n"},
		{"service role", good, goodSR + "1.1\tYes\tXX\tX\n"},
		{"service repeat", good, goodSR + "1.1\tYes\tIS\tX\n1.1\tYes\tIS\tX\n"},
		{"service fields", good, goodSR + "1.1\tYes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := loadCatalogue(tt.uc, tt.sr); err == nil {
				t.Error("loadCatalogue accepted a bad table")
			}
		})
	}
}

// TestTableE checks the catalogue against table E of the payload notes and
// against the forms of the constructed vectors.
func TestTableE(t *testing.T) {
	rows := 0
	for _, l := range strings.Split(messagesTSV, "\n") {
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "code\t") {
			continue
		}
		rows++
		f := strings.Split(l, "\t")
		code, err := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 16)
		if err != nil {
			t.Fatal(err)
		}
		u, ok := LookupCode(MessageCode(code))
		if !ok || u.Structure != f[2] {
			t.Errorf("%s: catalogue has %+v", f[0], u)
		}
	}
	if rows != 233 {
		t.Errorf("table E has %d codes, want the 233 of the reference data", rows)
	}
	tests := []struct {
		code     MessageCode
		name     string
		critical bool
		twoStep  bool
		commands []Form
	}{
		{0x0008, "CS02a", false, false, []Form{FormMAC, FormSigned}},
		{0x011B, "CS02f", false, false, []Form{FormMAC, FormSigned}},
		{0x0050, "ECS43", true, true, []Form{FormMACSigned}},
		{0x0104, "CS02b", false, false, []Form{FormMAC}},
		{0x0108, "CS02b", true, false, []Form{FormSigned}},
		{0x0126, "CS02g", true, true, []Form{FormMACSigned}},
		{0x0061, "ECS68", true, false, nil},
		{0x00CB, "CS02b future-dated alert", true, false, nil},
		{0x0027, "ECS17b", false, false, []Form{FormMAC}},
	}
	for _, tt := range tests {
		u, ok := LookupCode(tt.code)
		if !ok || u.Name != tt.name || u.Critical() != tt.critical || u.TwoStep != tt.twoStep || !slices.Equal(u.CommandForms, tt.commands) {
			t.Errorf("%s: %+v, want %s critical %t two-step %t commands %v", tt.code, u, tt.name, tt.critical, tt.twoStep, tt.commands)
		}
	}
	sensitive := 0
	for _, u := range UseCases() {
		if u.Sensitive {
			sensitive++
		}
	}
	if sensitive != len(sensitiveCodes) {
		t.Errorf("%d sensitive use cases, want the %d codes of spec 2.1", sensitive, len(sensitiveCodes))
	}
	for _, v := range loadConstructed(t) {
		m, err := Parse(unhex(t, v.MessageHex))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := LookupCode(m.Code)
		if blocks := len(v.encryptions(t)); blocks > 0 && !u.Sensitive {
			t.Errorf("%s: %s carries ciphered blocks but is not sensitive", v.Name, m.Code)
		}
		if !u.AllowsForm(m.CRA, m.Form()) {
			t.Errorf("%s: a %s %s in the %s form, table E has %v", v.Name, m.Code, m.CRA, m.Form(), u.Forms(m.CRA))
		}
	}
}
