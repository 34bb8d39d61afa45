// Package orderv1 is the reference shop's order API: reading orders,
// listing them, and watching an order's status as the checkout saga moves
// it along.
//
// The other files of this package are generated from order.proto by
// api/proto/generate.sh; edit the .proto file and regenerate.
package orderv1
