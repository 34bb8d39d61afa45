package domain_test

import (
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
)

// ExampleNewShipment schedules a shipment to France on a Thursday: three
// business days later, over the weekend, is Tuesday. Cancelling it works
// until it ships.
func ExampleNewShipment() {
	thursday := time.Date(2026, 3, 5, 9, 30, 0, 0, time.UTC)
	addr := domain.Address{Recipient: "Marie Curie", Lines: []string{"1 rue Pierre et Marie Curie"}, Locality: "Paris", PostalCode: "75005", RegionCode: "fr"}
	sh, err := domain.NewShipment("shp-1", "saga-1", "shipping", "order-1", addr, []domain.Line{{SKU: "BOOK-1", Quantity: 2}}, domain.DefaultRegions(), thursday)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sh.Status, sh.Address.RegionCode, sh.EstimatedDelivery.Weekday(), sh.EstimatedDelivery.Format(time.DateTime))

	fmt.Println(sh.Ship(thursday.Add(time.Hour)), sh.Status)
	_, err = sh.Cancel(thursday.Add(2 * time.Hour))
	fmt.Println(err)

	addr.RegionCode = "JP"
	_, err = domain.NewShipment("shp-2", "saga-2", "shipping", "order-2", addr, []domain.Line{{SKU: "BOOK-1", Quantity: 1}}, domain.DefaultRegions(), thursday)
	fmt.Println(err)
	// Output:
	// scheduled FR Tuesday 2026-03-10 09:30:00
	// true shipped
	// shipping: shipment shp-1 is shipped and can no longer be cancelled
	// shipping: the shop does not ship to region "JP"
}
