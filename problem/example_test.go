package problem_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/cairnhq/cairn/problem"
)

// A handler returns an error instead of writing one; the client gets RFC
// 9457 problem details.
func ExampleHandler() {
	h := problem.Handler(nil, func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		return problem.Errorf(http.StatusNotFound, "order %q not found", id)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /orders/{id}", h)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/orders/o-9", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body)
	// Output:
	// 404 application/problem+json
	// {"type":"about:blank","title":"Not Found","status":404,"detail":"order \"o-9\" not found"}
}
