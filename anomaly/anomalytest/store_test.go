package anomalytest_test

import (
	"testing"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
)

func TestMemoryStore(t *testing.T) {
	anomalytest.TestStore(t, func(*testing.T) anomaly.Store { return &anomalytest.Store{} })
}

func TestMemoryStoreExact(t *testing.T) {
	s := &anomalytest.Store{}
	anomalytest.TestExact(t, s, s)
}
