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
// ErrNotFound. A key-agreement re-key clears the device's pending
// key-agreement key (SetRouterDeviceKAPending) in the same transaction,
// whatever the key was: the meter has said which key it holds.
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
		if usage == RekeyKA {
			// The registry follows the meter: a key-agreement re-key is
			// settled either way (decision 017).
			if _, err := tx.exec(ctx, `UPDATE router_devices SET ka_pending = NULL WHERE eui = $1 AND ka_pending IS NOT NULL`, eui); err != nil {
				return fmt.Errorf("store: settling the pending key of device %s: %w", eui, err)
			}
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

// SetRouterDeviceKAPending records key (an uncompressed P-256 point) as the
// device's pending key-agreement key: the key of the certificate a CS02d
// about to be sent installs, unsettled until the meter's signed answer or
// read-back says which key it holds (decision 017). The audit entries es
// are appended in the same transaction when the pending key changes; the
// same key again is a no-op (a CS02d sent again). An unknown device gives
// ErrNotFound.
func (s *RouterStore) SetRouterDeviceKAPending(ctx context.Context, device smki.EUI, key []byte, es ...AuditEvent) (changed bool, err error) {
	if len(key) != 65 || key[0] != 4 {
		return false, fmt.Errorf("%w: device %s: pending key must be a 65-byte uncompressed point", ErrInvalid, device)
	}
	eui := device.String()
	err = s.db.inTx(ctx, func(tx dbtx) error {
		var cur []byte
		if err := tx.queryRow(ctx, `SELECT ka_pending FROM router_devices WHERE eui = $1`, eui).Scan(&cur); err != nil {
			if errors.Is(err, errNoRows) {
				return fmt.Errorf("device %s: %w", eui, ErrNotFound)
			}
			return fmt.Errorf("store: reading the pending key of device %s: %w", eui, err)
		}
		if string(cur) == string(key) {
			return nil
		}
		if _, err := tx.exec(ctx, `UPDATE router_devices SET ka_pending = $1 WHERE eui = $2`, key, eui); err != nil {
			return fmt.Errorf("store: recording the pending key of device %s: %w", eui, err)
		}
		changed = true
		_, err := appendAuditsIn(ctx, tx, es)
		return err
	})
	return changed, err
}

// ClearRouterDeviceKAPending forgets the device's pending key-agreement key
// when it is key (the meter refused the CS02d that carried it), appending
// es in the same transaction; otherwise it does nothing.
func (s *RouterStore) ClearRouterDeviceKAPending(ctx context.Context, device smki.EUI, key []byte, es ...AuditEvent) (changed bool, err error) {
	eui := device.String()
	err = s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE router_devices SET ka_pending = NULL WHERE eui = $1 AND ka_pending = $2`, eui, key)
		if err != nil {
			return fmt.Errorf("store: clearing the pending key of device %s: %w", eui, err)
		}
		if n == 0 {
			return nil
		}
		changed = true
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
	return changed, err
}

// RouterDeviceKAPending returns the device's pending key-agreement key, nil
// when none; an unknown device gives ErrNotFound.
func (s *RouterStore) RouterDeviceKAPending(ctx context.Context, device smki.EUI) ([]byte, error) {
	var key []byte
	err := s.db.read().queryRow(ctx, `SELECT ka_pending FROM router_devices WHERE eui = $1`, device.String()).Scan(&key)
	if errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("device %s: %w", device, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading the pending key of device %s: %w", device, err)
	}
	if len(key) == 0 {
		return nil, nil
	}
	return key, nil
}
