package sagatest_test

import (
	"testing"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

func TestMemStore(t *testing.T) {
	sagatest.Run(t, func(*testing.T) saga.Store { return sagatest.NewMemStore() })
}
