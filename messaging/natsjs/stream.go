package natsjs

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStream creates the stream cfg describes, or updates it to cfg when
// it exists. It is idempotent: calling it from every process at start-up
// is the intended use.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("natsjs: ensure stream %q for %q: %w", cfg.Name, cfg.Subjects, err)
	}
	return s, nil
}

// EnsureDeadLetterStream ensures the file-backed stream [DeadLetterStream]
// stores the default dead-letter subjects ([DeadLetterSubjects], "dlq.>").
// Messages in it are kept until deleted by hand.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	return EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "cairn dead letters",
		Subjects:    []string{DeadLetterSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
	})
}

// streamFor returns the name of the stream that stores subject, or an
// error: one wrapping errNoStream when there is none.
func streamFor(ctx context.Context, js jetstream.JetStream, subject string) (string, error) {
	name, err := js.StreamNameBySubject(ctx, subject)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", errNoStream
	}
	return name, err
}

var errNoStream = errors.New("no stream stores it")
