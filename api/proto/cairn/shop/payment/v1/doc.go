// Package paymentv1 is the reference shop's payment API: charging an
// order, refunding the charge, and reading a payment.
//
// The other files of this package are generated from payment.proto by
// api/proto/generate.sh; edit the .proto file and regenerate.
package paymentv1
