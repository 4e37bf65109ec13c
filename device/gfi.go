package device

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/metertrust/metertrust/commands"
)

// This file is the GFI text framing of gbcs-security.md section 12, the
// byte-stream transport the DCC's test tools speak, and a server that
// delivers framed commands to a Fleet.

// GFIPrefix opens every GFI data line.
const GFIPrefix = "GBCS:DATA#"

// GFIDiscardPrefix opens the line a metertrust GFI server writes when a
// meter discards a command. It is our extension to section 12 (a real meter
// answers with silence; a test tool then waits for its reply timeout), so a
// conformance run need not wait out a timeout for every refusal. Readers that
// do not know it treat it as an error line, as section 12 says.
const GFIDiscardPrefix = "GBCS:DISCARD:"

// MaxGFIMessage bounds the message bytes a GFI line may announce: far above
// any GBCS message, far below what could exhaust memory.
const MaxGFIMessage = 1 << 20

// ErrGFI is wrapped by every error about a GFI line that is not well formed.
var ErrGFI = errors.New("device: malformed GFI line")

// GFIFrame is one line of the GFI framing: a data line (Message set) or,
// from a metertrust server, a discard notice (Discard set to the reason).
type GFIFrame struct {
	// Segment is the segment number, 0 for an unsegmented message.
	Segment int
	// Message is the message bytes of a data line.
	Message []byte
	// Discard is the reason name of a discard notice ("bad-mac", ...);
	// empty on a data line.
	Discard string
}

// AppendGFI appends the data line of msg, segment seg, with its CR LF.
func AppendGFI(b []byte, seg int, msg []byte) []byte {
	b = append(b, GFIPrefix...)
	b = strconv.AppendInt(b, int64(seg), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ':')
	b = append(b, strings.ToUpper(hex.EncodeToString(msg))...)
	return append(b, '\r', '\n')
}

// ParseGFILine reads one line (without its CR LF) of the GFI framing: a data
// line whose announced length matches its upper-case hex exactly, or a
// discard notice. Anything else is an error wrapping ErrGFI.
func ParseGFILine(line string) (GFIFrame, error) {
	if reason, ok := strings.CutPrefix(line, GFIDiscardPrefix); ok {
		if reason == "" || strings.ContainsAny(reason, ": \t") {
			return GFIFrame{}, fmt.Errorf("%w: discard notice without a reason name", ErrGFI)
		}
		return GFIFrame{Discard: reason}, nil
	}
	rest, ok := strings.CutPrefix(line, GFIPrefix)
	if !ok {
		return GFIFrame{}, fmt.Errorf("%w: line does not start with %q", ErrGFI, GFIPrefix)
	}
	segS, rest, ok1 := strings.Cut(rest, ":")
	lenS, hx, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return GFIFrame{}, fmt.Errorf("%w: want %s<segment>:<length>:<hex>", ErrGFI, GFIPrefix)
	}
	seg, err := decimal(segS, 1<<16)
	if err != nil {
		return GFIFrame{}, fmt.Errorf("%w: segment %q: %v", ErrGFI, segS, err)
	}
	n, err := decimal(lenS, MaxGFIMessage)
	if err != nil {
		return GFIFrame{}, fmt.Errorf("%w: length %q: %v", ErrGFI, lenS, err)
	}
	if len(hx) != 2*n {
		return GFIFrame{}, fmt.Errorf("%w: length %d announces %d hex digits, line has %d", ErrGFI, n, 2*n, len(hx))
	}
	if strings.ToUpper(hx) != hx {
		return GFIFrame{}, fmt.Errorf("%w: hex must be upper case", ErrGFI)
	}
	msg, err := hex.DecodeString(hx)
	if err != nil {
		return GFIFrame{}, fmt.Errorf("%w: %v", ErrGFI, err)
	}
	return GFIFrame{Segment: seg, Message: msg}, nil
}

// decimal reads a decimal number without sign or leading zeros, at most max.
func decimal(s string, max int) (int, error) {
	if s == "" || len(s) > 8 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("want a decimal number without leading zeros")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("want decimal digits")
		}
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, fmt.Errorf("above %d", max)
	}
	return n, nil
}

// ReadGFI reads the next line from r and parses it. A line longer than a
// MaxGFIMessage message can make is an error wrapping ErrGFI.
func ReadGFI(r *bufio.Reader) (GFIFrame, error) {
	const maxLine = len(GFIPrefix) + 2*MaxGFIMessage + 32
	var sb strings.Builder
	for {
		chunk, err := r.ReadSlice('\n')
		sb.Write(chunk)
		if sb.Len() > maxLine {
			return GFIFrame{}, fmt.Errorf("%w: line over %d bytes", ErrGFI, maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if err == io.EOF && sb.Len() > 0 {
				return GFIFrame{}, fmt.Errorf("%w: line not ended by CR LF: %w", ErrGFI, io.ErrUnexpectedEOF)
			}
			return GFIFrame{}, err
		}
		break
	}
	line, ok := strings.CutSuffix(sb.String(), "\r\n")
	if !ok {
		return GFIFrame{}, fmt.Errorf("%w: line not ended by CR LF", ErrGFI)
	}
	return ParseGFILine(line)
}

// GFIServer delivers the commands of GFI data lines to a Fleet, each to the
// meter its header names as recipient, and writes back the meter's response
// as data lines (segment 0, or one line per general block transfer segment,
// numbered from 1), or a discard notice (GFIDiscardPrefix) with the reason.
// A line that is not well formed is answered with a discard notice
// "malformed" and the connection stays open; an unreadable stream closes it.
type GFIServer struct {
	// Fleet holds the meters. Required.
	Fleet *Fleet
	// Logger receives a record per connection and per discard; nothing is
	// logged when nil. No key material reaches it.
	Logger *slog.Logger
	// IdleTimeout closes a connection silent that long; 5 minutes when 0.
	IdleTimeout time.Duration
}

// Serve accepts connections on ln until ctx is done, then closes ln and
// every connection and returns nil.
func (s *GFIServer) Serve(ctx context.Context, ln net.Listener) error {
	if s.Fleet == nil {
		return fmt.Errorf("%w: GFI server needs a fleet", ErrConfig)
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "device.gfi")
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer func() {
		stop()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	// At most MaxGFIConns connections at once (each may hold a few MB of
	// line buffer): the next waits for one to end.
	slots := make(chan struct{}, MaxGFIConns)
	backoff := 5 * time.Millisecond
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ECONNABORTED) {
				// Out of descriptors, or a connection gone before it was
				// taken: wait and accept again, as net/http does.
				log.WarnContext(ctx, "GFI accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return nil
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("device: GFI accept: %w", err)
		}
		backoff = 5 * time.Millisecond
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
				<-slots
			}()
			s.serveConn(ctx, log, c, idle)
		}()
	}
}

// MaxGFIConns bounds the GFI server's connections at once.
const MaxGFIConns = 256

func (s *GFIServer) serveConn(ctx context.Context, log *slog.Logger, c net.Conn, idle time.Duration) {
	log.DebugContext(ctx, "GFI connection", "remote", c.RemoteAddr().String())
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(idle))
		f, err := ReadGFI(r)
		var out []byte
		switch {
		case errors.Is(err, ErrGFI):
			log.DebugContext(ctx, "malformed GFI line", "err", err)
			out = append(append([]byte(GFIDiscardPrefix), ReasonMalformed.String()...), '\r', '\n')
		case err != nil:
			return
		case f.Discard != "":
			out = append(append([]byte(GFIDiscardPrefix), ReasonNotCommand.String()...), '\r', '\n')
		default:
			out = s.deliver(ctx, log, f.Message)
		}
		// A peer that sends but does not read its answers is dropped
		// once its answer cannot be written in the idle time.
		_ = c.SetWriteDeadline(time.Now().Add(idle))
		if _, err := w.Write(out); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// deliver hands one message to its recipient and frames the answer.
func (s *GFIServer) deliver(ctx context.Context, log *slog.Logger, msg []byte) []byte {
	discard := func(r Reason) []byte {
		return append(append([]byte(GFIDiscardPrefix), r.String()...), '\r', '\n')
	}
	m, err := commands.Parse(msg)
	if err != nil {
		return discard(ReasonMalformed)
	}
	resp, err := s.Fleet.Deliver(ctx, m.Recipient, msg)
	if err != nil {
		if reason, ok := ReasonOf(err); ok {
			log.DebugContext(ctx, "meter discarded command", "eui", m.Recipient.String(), "reason", reason.String())
			return discard(reason)
		}
		if errors.Is(err, ErrNoMeter) {
			return discard(ReasonWrongRecipient)
		}
		log.WarnContext(ctx, "delivering command", "eui", m.Recipient.String(), "err", err)
		return discard(ReasonInternal)
	}
	if !commands.IsBlockTransfer(resp) {
		return AppendGFI(nil, 0, resp)
	}
	segs, err := commands.SplitSegments(resp)
	if err != nil {
		return discard(ReasonInternal)
	}
	var out []byte
	for i, seg := range segs {
		out = AppendGFI(out, i+1, seg)
	}
	return out
}
