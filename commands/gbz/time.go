package gbz

import (
	"fmt"
	"time"
)

// epoch2000 is the ZigBee UTCTime epoch, 2000-01-01 00:00:00 UTC.
var epoch2000 = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// UTC is a ZigBee UTCTime: whole seconds since 2000-01-01 00:00:00 UTC
// (section 5.2). On the wire it is 4 bytes, big-endian in the GBZ component
// header and in alert time stamps, little-endian inside ZCL payloads. The
// values 0 and 0xFFFFFFFF are used as markers ("now", "not set") by some
// use cases and are kept as they are.
type UTC uint32

// Time returns the instant u names, in UTC.
func (u UTC) Time() time.Time { return epoch2000.Add(time.Duration(u) * time.Second) }

// String formats u as RFC 3339 in UTC.
func (u UTC) String() string { return u.Time().Format(time.RFC3339) }

// NewUTC converts t to a ZigBee UTCTime, dropping any fraction of a second.
// It fails, wrapping ErrInvalid, for instants before 2000-01-01 or after
// 2136-02-07 06:28:15 UTC, which the 4-byte field cannot hold.
func NewUTC(t time.Time) (UTC, error) {
	s := t.Unix() - epoch2000.Unix()
	if s < 0 || s > 0xFFFFFFFF {
		return 0, fmt.Errorf("%w: time %s outside the ZigBee UTCTime range 2000-01-01 to 2136-02-07", ErrInvalid, t.UTC().Format(time.RFC3339))
	}
	return UTC(s), nil
}
