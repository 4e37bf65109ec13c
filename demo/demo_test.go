package demo

import (
	"bytes"
	"context"
	"testing"
)

func TestRunSmall(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Meters: 20, Out: &out})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	WriteTable(&out, sum)
	t.Log(out.String())
}
