package device_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// A fleet served as a communications service provider's endpoint: the
// router's HTTP transport posts MAC'd commands to
// /v1/devices/{EUI}/commands; a message the meter discards is answered 422
// with the reason as problem code, and GET /v1/stats counts it.
func ExampleNewHTTPHandler() {
	acb, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cell, _ := device.NewCell(device.UsageKeyAgreement, asn.CellManagement, smki.MustParseEUI("90B3D51F30000004"), &acb.PublicKey)
	anchors, _ := device.NewAnchors().With(smki.RoleAccessControlBroker, 1, cell)
	fleet := device.NewFleet(device.Config{})
	if _, err := fleet.Generate(context.Background(), 2, smki.MustParseEUI("0012A3FFFE000001"), device.Electricity, anchors); err != nil {
		fmt.Println(err)
		return
	}
	h, err := device.NewHTTPHandler(fleet, device.HTTPConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	res, err := http.Post(srv.URL+"/v1/devices/0012A3FFFE000001/commands", "application/octet-stream", bytes.NewReader([]byte{0xDF, 0x09}))
	if err != nil {
		fmt.Println(err)
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Content-Type"))
	fmt.Println(h.Stats().Meters, h.Stats().Discarded["malformed"])
	// Output:
	// 422 application/problem+json
	// 2 1
}
