// Package typev1 holds the message types that the reference shop's gRPC
// APIs share: money and the saga idempotency key.
//
// The other files of this package are generated from type.proto by
// api/proto/generate.sh; edit the .proto file and regenerate.
package typev1
