package router

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/store"
)

// routerRows calls visit with every value of every row of the router's
// tables (router_*) of the store at dsn, as bytes (text and blobs; numbers
// and times are skipped), naming its table and column.
func routerRows(t *testing.T, dsn string, visit func(table, column string, v []byte)) {
	t.Helper()
	ctx := context.Background()
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tables := queryNames(t, db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'router\_%' ESCAPE '\'`)
		for _, tb := range tables {
			rows, err := db.QueryContext(ctx, `SELECT * FROM `+tb)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					switch v := v.(type) {
					case []byte:
						visit(tb, cols[i], v)
					case string:
						visit(tb, cols[i], []byte(v))
					}
				}
			}
			rows.Close()
		}
		return
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name LIKE 'router\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		rows, err := conn.Query(ctx, `SELECT * FROM `+tb)
		if err != nil {
			t.Fatal(err)
		}
		fields := rows.FieldDescriptions()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				switch v := v.(type) {
				case []byte:
					visit(tb, fields[i].Name, v)
				case string:
					visit(tb, fields[i].Name, []byte(v))
				case []string:
					visit(tb, fields[i].Name, []byte(strings.Join(v, " ")))
				}
			}
		}
		rows.Close()
	}
}

func queryNames(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// holdsCIN reports whether v holds the four digits of cin standing alone:
// not inside a longer run of hex digits (an EUI, a command ID, a key id).
func holdsCIN(v []byte, cin string) bool {
	hex := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
	}
	for i := 0; ; {
		j := bytes.Index(v[i:], []byte(cin))
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || !hex(v[j-1])
		after := j+len(cin) == len(v) || !hex(v[j+len(cin)])
		if before && after {
			return true
		}
		i = j + 1
	}
}

// TestCINScrubbed has a meter display a CIN for an other user through the
// real API and the reference meter, on both stores, and checks that once
// the command is answered no stored row of the router's tables (the
// command's message, its response, the deliveries, the audit details
// copied into router tables) holds the CIN: the command keeps its header
// alone, marked scrubbed (decision 015). The CIN challenge keeps only its
// hash.
func TestCINScrubbed(t *testing.T) {
	for name, fresh := range storeDSNs(t) {
		t.Run(name, func(t *testing.T) {
			dsn := fresh(t)
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			e := newE2E(t, db)
			meter := e.meters[0]
			var rc Receipt
			if st, p := e.callAs(t, e.other, "POST", "/v1/cin", "application/json", []byte(`{"target":"`+meter.String()+`"}`), &rc); st != 202 {
				t.Fatalf("POST /v1/cin: %d %+v", st, p)
			}
			ds := e.awaitResponsesAs(t, e.other, 1)
			if ds[0].Kind != DeliveryResponse || ds[0].CommandID != rc.ID {
				t.Fatalf("delivery %+v, want the ECS50's response", ds[0])
			}
			m, _ := e.fleet.Meter(meter)
			cin, ok := m.CIN()
			if !ok || len(cin) != 4 {
				t.Fatalf("the meter displays %q, %v", cin, ok)
			}
			// The stored command is its header alone, marked scrubbed.
			c, err := db.Router().RouterCommand(context.Background(), rc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c.State != store.CommandResponded || len(c.Message) == 0 {
				t.Fatalf("stored command %+v", c)
			}
			var found []string
			routerRows(t, dsn, func(table, column string, v []byte) {
				if holdsCIN(v, cin) {
					found = append(found, fmt.Sprintf("%s.%s", table, column))
				}
			})
			if len(found) != 0 {
				t.Errorf("the CIN %s is stored in %v", cin, found)
			}
			// The scan would see the CIN as the ECS50 carries it.
			if p, err := cinPayload(payloadContext{code: codeECS50, counter: 1, user: e.other.eui, target: meter, now: time.Now()}, 0); err != nil ||
				!holdsCIN(p, "0000") {
				t.Fatalf("the scan misses a CIN payload: %x, %v", p, err)
			}
			var scrubbed int
			if err := scrubFlag(t, dsn, rc.ID, &scrubbed); err != nil || scrubbed != 1 {
				t.Errorf("message_scrubbed = %d, %v; want 1", scrubbed, err)
			}
			// The consent still works: the hash checks the CIN read back.
			var cs struct {
				ID string `json:"id"`
			}
			body := fmt.Sprintf(`{"device":%q,"cin":%q,"scope":["4.8.1"],"days":30}`, meter.String(), cin)
			if st, p := e.callAs(t, e.other, "POST", "/v1/consents", "application/json", []byte(body), &cs); st != 201 || cs.ID == "" {
				t.Errorf("POST /v1/consents with the displayed CIN: %d %+v", st, p)
			}

			// A CIN request quarantined by anomaly detection keeps its
			// header alone in the quarantine record.
			det := e.svc.cfg.Detector
			if _, err := det.SetThreshold(context.Background(), anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}},
				anomaly.Threshold{Scope: anomaly.ScopeUserService, ServiceRef: "9.1", Limit: 1, Window: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if st, p := e.callAs(t, e.other, "POST", "/v1/cin", "application/json", []byte(`{"target":"`+meter.String()+`"}`), nil); p.Code != "quarantined" {
				t.Fatalf("a second CIN request over the threshold: %d %+v, want quarantined", st, p)
			}
			qs, err := det.List(context.Background(), anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleViewer}}, anomaly.Filter{})
			if err != nil || len(qs) != 1 {
				t.Fatalf("quarantine records %+v, %v; want one", qs, err)
			}
			if qm, err := commands.Parse(qs[0].Command); err != nil || len(qm.Payload) != 0 || qm.Code != codeECS50 {
				t.Errorf("quarantined CIN request %x (%v): want its header alone", qs[0].Command, err)
			}
		})
	}
}

// scrubFlag reads router_commands.message_scrubbed of id.
func scrubFlag(t *testing.T, dsn, id string, out *int) error {
	t.Helper()
	ctx := context.Background()
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			return err
		}
		defer db.Close()
		return db.QueryRowContext(ctx, `SELECT message_scrubbed FROM router_commands WHERE id = ?`, id).Scan(out)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, `SELECT message_scrubbed FROM router_commands WHERE id = $1`, id).Scan(out)
}
