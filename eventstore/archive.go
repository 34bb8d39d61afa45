package eventstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ArchivedEvent is one line of an archive: a stream's events in JSON
// Lines, one ArchivedEvent per line, in version order. [ArchiveStream]
// writes one and deletes the stream; [ReadArchive] reads one back, for an
// audit or to append the events to a new stream. Data is base64 in JSON,
// as encoding/json writes a []byte.
type ArchivedEvent struct {
	StreamID      string    `json:"stream_id"`
	Version       int64     `json:"version"`
	Position      Position  `json:"position"`
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schema_version"`
	Data          []byte    `json:"data"` // base64 in JSON
	Metadata      Metadata  `json:"metadata"`
	RecordedAt    time.Time `json:"recorded_at"`
}

// archivePage is how many events ArchiveStream reads at once.
const archivePage = 1000

// ArchiveStream writes the events of stream to w as an archive and then
// deletes the stream ([Store.DeleteStream]), so that it can no longer be
// read or appended to. It deletes only once every event has been written
// without error; an error of w leaves the stream as it was. The stream's
// events stay in the global log, as DeleteStream says: archiving moves a
// closed stream (an order delivered years ago) out of the live model, and
// crypto-shredding, not archiving, is how personal data is erased.
//
// It returns how many events it wrote. A stream appended to while it is
// being written out is refused with a [*VersionConflictError] and not
// deleted: ArchiveStream checks the version after writing and before
// deleting. The check and the deletion are two calls, so an append in
// between would be deleted unarchived: archive streams that are closed,
// whose aggregate takes no more commands.
func ArchiveStream(ctx context.Context, s Store, stream string, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	n := 0
	var last int64
	for {
		events, err := s.ReadStream(ctx, stream, last+1, Forwards, archivePage)
		if err != nil {
			return n, fmt.Errorf("eventstore: archive %q: %w", stream, err)
		}
		for _, e := range events {
			a := ArchivedEvent{StreamID: e.StreamID, Version: e.Version, Position: e.Position, ID: e.ID, Type: e.Type,
				SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt}
			if err := enc.Encode(a); err != nil {
				return n, fmt.Errorf("eventstore: archive %q: write event %d: %w", stream, e.Version, err)
			}
			n++
			last = e.Version
		}
		if len(events) < archivePage {
			break
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("eventstore: archive %q: %w", stream, err)
	}
	v, err := s.Version(ctx, stream)
	if err != nil {
		return n, fmt.Errorf("eventstore: archive %q: %w", stream, err)
	}
	if v != last {
		return n, &VersionConflictError{Stream: stream, Expected: Exact(last), Actual: v}
	}
	if err := s.DeleteStream(ctx, stream); err != nil {
		return n, fmt.Errorf("eventstore: archive %q: delete: %w", stream, err)
	}
	return n, nil
}

// ErrBadArchive is wrapped by the errors of [ReadArchive].
var ErrBadArchive = errors.New("eventstore: bad archive")

// ReadArchive reads an archive written by [ArchiveStream]. It checks that
// every line is an event of one stream, with versions 1, 2, 3... in order,
// and returns an error wrapping [ErrBadArchive] that names the line
// otherwise. Lines may be as long as an event may be large.
func ReadArchive(r io.Reader) ([]RecordedEvent, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 2*(MaxEventSize+MaxMetadataSize)+64<<10)
	var out []RecordedEvent
	line := 0
	for sc.Scan() {
		line++
		var a ArchivedEvent
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadArchive, line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: line %d: more than one JSON value", ErrBadArchive, line)
		}
		e := RecordedEvent{Event: Event{ID: a.ID, Type: a.Type, SchemaVersion: a.SchemaVersion, Data: a.Data, Metadata: a.Metadata},
			StreamID: a.StreamID, Version: a.Version, Position: a.Position, RecordedAt: a.RecordedAt}
		switch {
		case e.ID == "" || e.Type == "" || e.StreamID == "":
			return nil, fmt.Errorf("%w: line %d: event without an ID, a type or a stream", ErrBadArchive, line)
		case len(out) > 0 && e.StreamID != out[0].StreamID:
			return nil, fmt.Errorf("%w: line %d: stream %q in an archive of %q", ErrBadArchive, line, e.StreamID, out[0].StreamID)
		case e.Version != int64(len(out))+1:
			return nil, fmt.Errorf("%w: line %d: version %d, want %d", ErrBadArchive, line, e.Version, len(out)+1)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: after line %d: %v", ErrBadArchive, line, err)
	}
	return out, nil
}
