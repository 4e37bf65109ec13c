package store

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Statements over a variable number of rows or values take a shape that
// SQLite's statement cache (stmtcache.go) can reuse: IN lists are padded to
// a power of two, and multi-row inserts run as one cached single-row
// statement per row on SQLite (no round trips to save there) and as one
// statement on PostgreSQL (one round trip).

// inList returns "$first, ..." for vals padded to the next power of two by
// repeating the last value (which changes no IN predicate), and the padded
// values.
func inList(first int, vals []any) (string, []any) {
	if len(vals) == 0 {
		return "NULL", nil
	}
	n := 1 << bits.Len(uint(len(vals)-1))
	padded := append(make([]any, 0, n), vals...)
	for len(padded) < n {
		padded = append(padded, vals[len(vals)-1])
	}
	return placeholders(first, n), padded
}

// insertRows runs head (an INSERT up to and including "VALUES ") with one
// row per element of rows, each written by row (a tuple whose parameters
// are $1..$len(rows[i])), and then tail (an ON CONFLICT clause, or empty).
// Every row must have the same number of values.
func insertRows(ctx context.Context, tx dbtx, head, row, tail string, rows [][]any) error {
	_, pg := asPG(tx)
	ss, err := rowStatements(nil, pg, head, row, tail, rows)
	if err != nil {
		return err
	}
	return execAll(ctx, tx, ss)
}

// statement is one SQL statement and its arguments.
type statement struct {
	q    string
	args []any
}

// execAll runs ss in order.
func execAll(ctx context.Context, tx dbtx, ss []statement) error {
	for _, st := range ss {
		if _, err := tx.exec(ctx, st.q, st.args...); err != nil {
			return err
		}
	}
	return nil
}

// rowStatements appends to ss the statements of insertRows: one
// multi-row statement on PostgreSQL (pg), one single-row statement per row
// on SQLite.
func rowStatements(ss []statement, pg bool, head, row, tail string, rows [][]any) ([]statement, error) {
	if len(rows) == 0 {
		return ss, nil
	}
	if !pg {
		q := head + row + tail
		for _, r := range rows {
			ss = append(ss, statement{q, r})
		}
		return ss, nil
	}
	var sb strings.Builder
	sb.WriteString(head)
	width := len(rows[0])
	args := make([]any, 0, width*len(rows))
	for i, r := range rows {
		if len(r) != width {
			return nil, fmt.Errorf("%w: row %d has %d values, want %d", ErrInvalid, i, len(r), width)
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(renumber(row, len(args)))
		args = append(args, r...)
	}
	sb.WriteString(tail)
	return append(ss, statement{sb.String(), args}), nil
}

// renumber adds offset to every $n parameter of s.
func renumber(s string, offset int) string {
	if offset == 0 {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			sb.WriteByte(s[i])
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(s[i+1 : j])
		sb.WriteString("$" + strconv.Itoa(n+offset))
		i = j - 1
	}
	return sb.String()
}
