package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/shop/order/adapters/httpapi"
	sqlitestore "github.com/cairnhq/cairn/internal/shop/order/adapters/sqlite"
	"github.com/cairnhq/cairn/internal/shop/order/app"
)

func ExampleNewHandler() {
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, sqlitestore.MemoryPath, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	svc, err := app.New(store, app.Config{
		Now:   func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		NewID: func() string { return "o-1" },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(httpapi.NewHandler(svc, nil))
	defer srv.Close()

	body := `{"customer_id":"c1","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1299}]}`
	resp, err := http.Post(srv.URL+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))
	fmt.Print(string(b))
	// Output:
	// 201 /orders/o-1
	// {"id":"o-1","customer_id":"c1","status":"placed","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1299}],"total":2598,"created_at":"2026-03-01T12:00:00Z","updated_at":"2026-03-01T12:00:00Z"}
}
