package domain_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

func ExampleNewOrder() {
	o, err := domain.NewOrder("o-1", "c-1", []domain.Line{
		{SKU: "SKU-1", Quantity: 2, UnitPrice: 1299},
		{SKU: "SKU-2", Quantity: 1, UnitPrice: 500},
	}, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(o.Status, o.Total)

	_, err = domain.NewOrder("o-2", "c-1", []domain.Line{{SKU: "SKU-1", Quantity: 0}}, time.Now())
	fmt.Println(err, errors.Is(err, domain.ErrInvalid))
	// Output:
	// placed 3098
	// order: line 1: quantity 0 out of range [1,1000] true
}
