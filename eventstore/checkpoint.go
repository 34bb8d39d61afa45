package eventstore

import (
	"context"
	"fmt"
)

// Checkpoints keeps named positions in the global log: how far a follower
// of the log (an outbox relay, a subscriber that is not a projection with
// its own transactional checkpoint) has got. Both backends implement it,
// in the store's own database.
type Checkpoints interface {
	// LoadCheckpoint returns the position saved under name, and 0 (the
	// start of the log) if none was saved.
	LoadCheckpoint(ctx context.Context, name string) (Position, error)
	// SaveCheckpoint saves pos under name, replacing what was saved. It
	// may move a checkpoint backwards, to replay the log.
	SaveCheckpoint(ctx context.Context, name string, pos Position) error
}

// Counter counts the events of the global log after a position: the
// backlog of a follower, for its depth metric.
type Counter interface {
	// CountAfter returns how many committed events have positions above
	// after, counting no further than limit (it returns limit when there
	// are more), so that the cost of a call is bounded.
	CountAfter(ctx context.Context, after Position, limit int64) (int64, error)
}

// ValidateCheckpoint checks a checkpoint's name and position, as the
// backends do before saving: the name must be 1 to MaxIDLength bytes and
// the position not negative.
func ValidateCheckpoint(name string, pos Position) error {
	switch {
	case name == "":
		return fmt.Errorf("eventstore: checkpoint name is empty")
	case len(name) > MaxIDLength:
		return fmt.Errorf("eventstore: checkpoint name is %d bytes, more than %d", len(name), MaxIDLength)
	case pos < 0:
		return fmt.Errorf("eventstore: checkpoint %q: position %d is negative", name, pos)
	}
	return nil
}
