// Package shippingv1 is the reference shop's shipping API: scheduling an
// order's shipment, cancelling it, and reading a shipment.
//
// The other files of this package are generated from shipping.proto by
// api/proto/generate.sh; edit the .proto file and regenerate.
package shippingv1
