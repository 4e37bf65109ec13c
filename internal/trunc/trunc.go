// Package trunc bounds text taken from callers before it goes into an error
// detail, a log line or an audit record.
package trunc

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s cut to at most n bytes on a rune boundary, with "..."
// added when cut, invalid UTF-8 and control characters replaced by U+FFFD
// so that quoted input cannot forge lines or break a terminal.
func String(s string, n int) string {
	cut := false
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if cut {
		s += "..."
	}
	return s
}
