// Package inventoryv1 is the reference shop's inventory API: stock levels,
// and the reservations the checkout saga makes, releases and confirms.
//
// The other files of this package are generated from inventory.proto by
// api/proto/generate.sh; edit the .proto file and regenerate.
package inventoryv1
