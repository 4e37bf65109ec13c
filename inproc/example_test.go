package inproc_test

import (
	"context"
	"fmt"
	"log"

	"github.com/metertrust/metertrust/inproc"
)

// Start assembles the whole system; with no listener the router's pipeline
// and forwarder still serve in-process calls.
func ExampleStart() {
	s, err := inproc.Start(context.Background(), inproc.Config{Meters: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(len(s.Meters), "meters")
	fmt.Println("ACB", s.ACB.EUI)
	for _, p := range s.PartyList {
		if p.TLS != nil {
			fmt.Println(p.Name, p.UserRole)
		}
	}
	// Output:
	// 2 meters
	// ACB 90B3D51F30000004
	// supplier IS
	// network-operator ED
	// third-party OU
}
