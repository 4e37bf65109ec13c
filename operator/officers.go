package operator

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// CeremonyOfficers is how many distinct officers confirm a key ceremony
// (decision 023).
const CeremonyOfficers = 2

// ErrOfficers is wrapped by every refusal of a ceremony's officers: too few
// or repeated names, an unknown officer, a wrong password, a missing
// ceremony role.
var ErrOfficers = errors.New("operator: ceremony officers not confirmed")

// Confirm is one officer's confirmation: the name given (--officer) and the
// password the officer typed at the console.
type Confirm struct {
	Name     string
	Password string
}

// ConfirmOfficers checks a key ceremony's officers: exactly
// CeremonyOfficers distinct names, each an operator of c holding
// RoleCeremony whose dashboard password (argon2id, metertrust operator
// passwd) is the one the officer typed. It returns their names, in order,
// for the ceremony's audit entries. Every officer is checked (the same
// argon2id cost whether or not an earlier one failed), and the error names
// the officers refused, never a password.
func ConfirmOfficers(c *Credentials, confirms []Confirm) ([]string, error) {
	if len(confirms) != CeremonyOfficers {
		return nil, fmt.Errorf("%w: a ceremony needs %d officers (--officer NAME, twice), got %d", ErrOfficers, CeremonyOfficers, len(confirms))
	}
	names := make([]string, len(confirms))
	for i, cf := range confirms {
		names[i] = cf.Name
	}
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		return nil, fmt.Errorf("%w: the officers must be %d different people, got %s", ErrOfficers, CeremonyOfficers, strings.Join(names, " and "))
	}
	var refused []string
	for _, cf := range confirms {
		id, ok := c.Login(cf.Name, cf.Password)
		switch {
		case !ok:
			refused = append(refused, fmt.Sprintf("%s (unknown officer or wrong password)", clip(cf.Name)))
		case !id.Has(RoleCeremony):
			refused = append(refused, fmt.Sprintf("%s (no %s role)", clip(cf.Name), RoleCeremony))
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrOfficers, strings.Join(refused, "; "))
	}
	return names, nil
}

// ReadConfirms reads one password line from r for each of names, in order,
// prompting on prompt ("password of officer NAME: "): what the officers
// type at the ceremony console, or a test's stdin. readSecret, when not
// nil, reads a line without echo (a terminal); otherwise lines are read
// from r.
func ReadConfirms(r io.Reader, prompt io.Writer, names []string, readSecret func() (string, error)) ([]Confirm, error) {
	br := bufio.NewReader(r)
	out := make([]Confirm, len(names))
	for i, n := range names {
		fmt.Fprintf(prompt, "password of officer %s: ", n)
		var pw string
		var err error
		if readSecret != nil {
			pw, err = readSecret()
			fmt.Fprintln(prompt)
		} else {
			pw, err = br.ReadString('\n')
			if errors.Is(err, io.EOF) && pw != "" {
				err = nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading the password of officer %s: %v", ErrOfficers, clip(n), err)
		}
		out[i] = Confirm{Name: n, Password: strings.TrimRight(pw, "\r\n")}
	}
	return out, nil
}
