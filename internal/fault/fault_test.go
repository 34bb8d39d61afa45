package fault

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		s    Settings
		want string // substring of the error; "" for valid
	}{
		{Settings{}, ""},
		{Settings{ErrorRate: 1, Latency: time.Second, LatencyRate: 0.5}, ""},
		{Settings{ErrorRate: -0.1}, "error_rate = -0.1"},
		{Settings{ErrorRate: 1.5}, "error_rate = 1.5"},
		{Settings{LatencyRate: 2}, "latency_rate = 2"},
		{Settings{Latency: -time.Second}, "latency = -1s"},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v.Validate() = %v, want nil", tt.s, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v.Validate() = %v, want an error containing %q", tt.s, err, tt.want)
		}
	}
}

func TestSettingsJSON(t *testing.T) {
	in := Settings{ErrorRate: 0.25, Latency: 150 * time.Millisecond, LatencyRate: 0.5}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"error_rate":0.25,"latency_rate":0.5,"latency":"150ms"}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out Settings
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", b, out, err, in)
	}
	if err := json.Unmarshal([]byte(`{"latency":1000}`), &out); err != nil || out.Latency != time.Microsecond {
		t.Errorf("nanoseconds: %+v, %v", out, err)
	}
	for body, want := range map[string]string{
		`{"error_rat":0.5}`:  `unknown field "error_rat"`,
		`{"latency":"fast"}`: `latency = "fast"`,
		`{"latency":true}`:   `latency = true`,
	} {
		if err := json.Unmarshal([]byte(body), &out); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Unmarshal(%s) = %v, want an error containing %q", body, err, want)
		}
	}
}

func TestInjectRates(t *testing.T) {
	i := New("db")
	for range 100 {
		if err := i.Inject(t.Context()); err != nil {
			t.Fatalf("zero settings: Inject = %v", err)
		}
	}
	if err := i.Set(Settings{ErrorRate: 2}); err == nil {
		t.Fatal("Set(ErrorRate 2) = nil, want an error")
	}
	if err := i.Set(Settings{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	err := i.Inject(t.Context())
	var fe *Error
	if !errors.Is(err, ErrInjected) || !errors.As(err, &fe) || fe.Target != "db" {
		t.Fatalf("ErrorRate 1: Inject = %v, want an *Error for db", err)
	}
	if f, d := i.Counts(); f != 1 || d != 0 {
		t.Errorf("Counts = %d, %d; want 1, 0", f, d)
	}

	// About half of many calls fail at rate 0.5; the bounds are 10 standard
	// deviations wide, so this does not flake.
	_ = i.Set(Settings{ErrorRate: 0.5})
	failed := 0
	for range 10000 {
		if i.Inject(t.Context()) != nil {
			failed++
		}
	}
	if failed < 4500 || failed > 5500 {
		t.Errorf("ErrorRate 0.5: %d of 10000 failed", failed)
	}
}

func TestInjectLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		i := New("db")
		_ = i.Set(Settings{Latency: 200 * time.Millisecond})
		start := time.Now()
		if err := i.Inject(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Errorf("Inject took %v, want 200ms", got)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := i.Inject(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Inject with a 50ms deadline = %v, want DeadlineExceeded", err)
		}
		if _, d := i.Counts(); d != 2 {
			t.Errorf("delayed = %d, want 2", d)
		}
	})
}

func TestInjectRecordsSpanEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("test").Start(t.Context(), "call")
	i := New("db")
	_ = i.Set(Settings{ErrorRate: 1, Latency: time.Nanosecond})
	_ = i.Inject(ctx)
	span.End()
	var names []string
	for _, e := range rec.Ended()[0].Events() {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "fault.delay,fault.error" {
		t.Errorf("events = %s, want fault.delay,fault.error", got)
	}
}

func TestHandler(t *testing.T) {
	db := New("db")
	srv := httptest.NewServer(Handler(nil, db, New("payments")))
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"PUT", "/faults/db", `{"error_rate":0.5,"latency":"20ms"}`, 200, `"error_rate":0.5`},
		{"GET", "/faults/db", "", 200, `"latency":"20ms"`},
		{"GET", "/faults", "", 200, `{"faults":[{"name":"db"`},
		{"PUT", "/faults/db", `{"error_rate":7}`, 400, "error_rate = 7"},
		{"PUT", "/faults/db", `{"eror_rate":1}`, 400, `unknown field \"eror_rate\"`},
		{"PUT", "/faults/db", strings.Repeat(" ", maxBody+1), 413, "body exceeds"},
		{"GET", "/faults/disk", "", 404, `no fault injector \"disk\"`},
		{"DELETE", "/faults/db", "", 200, `"error_rate":0,`},
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s = %d %s, want %d containing %s", tt.method, tt.path, code, body, tt.code, tt.want)
		}
	}
	if s := db.Settings(); s != (Settings{}) {
		t.Errorf("after DELETE, settings = %+v, want zero", s)
	}
}
