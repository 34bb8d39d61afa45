package choreo_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/natstest"
	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

func randHex(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// postgresDB returns a database on the machine's PostgreSQL whose
// search_path is a fresh schema, dropped when t ends.
func postgresDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	schema := "choreo_" + randHex(t)
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	db, err := sql.Open("pgx", url+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// The flows on the machine's NATS JetStream, every participant and the
// tracker on PostgreSQL (one schema each, as separate services).
func TestFlowsNATSPostgres(t *testing.T) {
	natsURL := testenv.Require(t, testenv.NATS)
	pgURL := testenv.Require(t, testenv.Postgres)
	if natsURL == "" || pgURL == "" {
		return
	}
	js := natstest.JetStream(t, natsURL)
	r := randHex(t)
	prefix := "choreo" + r + "."
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := jetstream.StreamConfig{Name: "CHOREO_" + r, Subjects: []string{prefix + ">"}, Storage: jetstream.FileStorage}
	if _, err := natsjs.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatalf("EnsureStream(%s) = %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, cfg.Name)
	})
	// The shared "dlq.>" stream, kept: other tests use it too.
	if _, err := natsjs.EnsureDeadLetterStream(ctx, js); err != nil {
		t.Fatalf("EnsureDeadLetterStream = %v", err)
	}
	opts := natsjs.Options{AckWait: 10 * time.Second, PollWait: time.Second, RetryWait: 50 * time.Millisecond}
	pub := natsjs.NewPublisher(js, opts)
	defer pub.Close()
	sub := natsjs.NewSubscriber(js, opts)
	defer sub.Close()
	s := orderSaga(prefix)
	s.Name = "order" + r // groups (durable consumers) of their own
	for i := range s.Steps {
		s.Steps[i].Participant += r
	}
	w := start(t, s, pub, sub, func(t testing.TB, _ string) (*sql.DB, cqrs.Dialect) {
		return postgresDB(t, pgURL), cqrs.Postgres
	}, nil)
	checkFlows(t, w, pub, prefix)
}
