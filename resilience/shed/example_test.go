package shed_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/cairnhq/cairn/resilience/shed"
)

// busyCPU is a CPU signal stuck at 95%.
type busyCPU struct{}

func (busyCPU) Usage() float64 { return 0.95 }

func Example() {
	s, err := shed.New(shed.Config{Name: "api", CPU: busyCPU{}})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// The CPU is busy, so sheddable requests are shed at once.
	ctx := shed.WithPriority(context.Background(), shed.Sheddable)
	_, err = s.Allow(ctx)
	fmt.Println(errors.Is(err, shed.ErrShed))

	// Critical requests (the default) are admitted up to the estimate.
	p, err := s.Allow(context.Background())
	fmt.Println(err)
	p.Done()
	// Output:
	// true
	// <nil>
}

func ExampleWriteHTTP() {
	s, err := shed.New(shed.Config{Name: "api", CPU: busyCPU{}})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	h := func(w http.ResponseWriter, r *http.Request) {
		prio, _ := shed.FromHeader(r.Header)
		p, err := s.Allow(shed.WithPriority(r.Context(), prio))
		if shed.WriteHTTP(w, err) {
			return
		}
		defer p.Done()
		fmt.Fprintln(w, "ok")
	}
	req := httptest.NewRequest("GET", "/", nil)
	shed.SetHeader(req.Header, shed.Sheddable)
	w := httptest.NewRecorder()
	h(w, req)
	fmt.Println(w.Code, w.Header().Get("Retry-After"))
	// Output: 503 1
}
