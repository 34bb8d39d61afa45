package natstest_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRestartKeepsStore: a restarted server listens on the same URL and
// still has the streams and messages stored before.
func TestRestartKeepsStore(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	js := natstest.JetStream(t, url)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(t.Context(), "s", []byte("kept")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	srv.Restart()
	if got := srv.URL(); got != url {
		t.Errorf("URL after Restart = %q, want %q", got, url)
	}
	js2 := natstest.JetStream(t, srv.URL())
	s, err := js2.Stream(t.Context(), "S")
	if err != nil {
		t.Fatalf("Stream(S) after Restart: %v", err)
	}
	m, err := s.GetMsg(t.Context(), 1)
	if err != nil || string(m.Data) != "kept" {
		t.Errorf("GetMsg(1) after Restart = %v, %v; want \"kept\"", m, err)
	}
}
