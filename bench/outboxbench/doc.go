// Package outboxbench measures the throughput of cairn's outbox relay to
// NATS JetStream (msgs/s) against plain JetStream publish loops moving the
// same messages.
//
// Every variant moves the same 10,000 events (about 200 bytes of JSON
// each, over 100 streams, appended one event at a time round-robin, so
// that a batch of 256 holds about 100 keys) to a file-backed JetStream
// stream that stores "events.>", and reports msgs/s:
//
//   - relay: outbox.Relay (BatchSize 256) from checkpoint 0 on a SQLite
//     event store holding the events, until Relay.Position reaches the
//     last event: reads, messages, publishes through natsjs.Publisher and
//     checkpoints;
//   - natsjs: natsjs.Publisher.Publish of the relay's messages, built
//     beforehand, in batches of 256: the transport alone, without the
//     relay's reads and checkpoints;
//   - publish-loop: jetstream's synchronous PublishMsg of the same
//     messages one after the other, the naive baseline;
//   - publish-async: jetstream's PublishMsgAsync with a window of 256
//     messages in flight, then a wait for every acknowledgement: the
//     practical limit of one connection.
//
// Every message carries its event ID as Nats-Msg-Id, so JetStream would
// drop a second copy within the stream's duplicate window (2 minutes by
// default): each iteration therefore publishes to a freshly created
// stream, deleted and created again outside the timer, and the relay
// starts from a checkpoint of a new name.
//
// The broker is an embedded server (natsjs.RunEmbedded) with its store in
// a temporary directory, in the benchmark's process. Set CAIRN_BENCH_NATS
// (e.g. nats://127.0.0.1:4222) to use another server instead; there the
// stream is named OUTBOXBENCH_<random> and stores
// "outboxbench.<random>.events.>", so as not to clash with streams others
// own, and is deleted at the end. It has no API; run it with
// bench/run.sh Outbox.
package outboxbench
