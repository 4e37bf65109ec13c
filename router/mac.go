package router

import (
	"fmt"

	"github.com/metertrust/metertrust/commands"
)

// acbMAC computes the access control broker's 12-byte GMAC of a command from
// Z (spec section 5) with package commands' KDF and GMAC. The derived key
// lives only in this call and is cleared before it returns.
func acbMAC(m *commands.Message, z []byte) ([]byte, error) {
	if len(z) != 32 {
		return nil, fmt.Errorf("router: shared secret of %d bytes, want 32", len(z))
	}
	key := commands.DeriveKey(z, m.MACInfo())
	defer clear(key)
	return commands.MAC(key, m)
}
