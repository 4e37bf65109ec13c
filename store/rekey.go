package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// The key usages of RekeyRouterDevice.
const (
	RekeyDS = "ds"
	RekeyKA = "ka"
)

// RekeyRouterDevice replaces a device's digital-signing (usage RekeyDS) or
// key-agreement (RekeyKA) public key in the registry with next, in one
// transaction with the audit entries es, provided the registry still holds
// old for it: a device re-key the meter confirmed (CS02d, decision 017). A
// key already next is a no-op that appends nothing (a late or repeated
// confirmation); another key gives ErrConflict; an unknown device
// ErrNotFound.
func (s *RouterStore) RekeyRouterDevice(ctx context.Context, device smki.EUI, usage string, old, next []byte, at time.Time, es ...AuditEvent) (changed bool, err error) {
	col := ""
	switch usage {
	case RekeyDS:
		col = "ds_public"
	case RekeyKA:
		col = "ka_public"
	default:
		return false, fmt.Errorf("%w: device %s: re-key usage %q", ErrInvalid, device, usage)
	}
	if len(next) != 65 || next[0] != 4 {
		return false, fmt.Errorf("%w: device %s: new key must be a 65-byte uncompressed point", ErrInvalid, device)
	}
	eui := device.String()
	err = s.db.inTx(ctx, func(tx dbtx) error {
		var cur []byte
		err := tx.queryRow(ctx, `SELECT `+col+` FROM router_devices WHERE eui = $1`, eui).Scan(&cur)
		if err != nil {
			if errors.Is(err, errNoRows) {
				return fmt.Errorf("device %s: %w", eui, ErrNotFound)
			}
			return fmt.Errorf("store: re-keying device %s: %w", eui, err)
		}
		switch {
		case string(cur) == string(next):
			return nil
		case string(cur) != string(old):
			return fmt.Errorf("%w: device %s: the registry's %s key is not the one replaced", ErrConflict, eui, usage)
		}
		if _, err := tx.exec(ctx, `UPDATE router_devices SET `+col+` = $1, updated_at = $2 WHERE eui = $3`, next, at, eui); err != nil {
			return fmt.Errorf("store: re-keying device %s: %w", eui, err)
		}
		changed = true
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
	return changed, err
}
