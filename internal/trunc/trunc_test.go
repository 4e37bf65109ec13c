package trunc

import "testing"

func TestString(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 64, "short"},
		{"abcdef", 3, "abc..."},
		{"aé", 2, "a..."}, // é is two bytes: cut before it, not inside
		{"line\nforged", 64, "line\uFFFDforged"},
		{"bad\xffutf8", 64, "bad\uFFFDutf8"},
		{"", 0, ""},
	} {
		if got := String(c.in, c.n); got != c.want {
			t.Errorf("String(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
