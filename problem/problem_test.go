package problem_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/problem"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFrom(t *testing.T) {
	bad := problem.Errorf(http.StatusBadRequest, "field %q is required", "name")
	secret := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	tests := []struct {
		name string
		err  error
		want *problem.Error
	}{
		{"problem error", bad, bad},
		{"wrapped problem error", fmt.Errorf("place order: %w", bad), bad},
		{"other error", secret, &problem.Error{Status: 500, Detail: "internal error", Err: secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problem.From(tt.err)
			if got.Status != tt.want.Status || got.Detail != tt.want.Detail || got.Err != tt.want.Err {
				t.Errorf("From(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
	if got, want := bad.Error(), `http 400: field "name" is required`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := &problem.Error{Status: 503, Detail: "store unavailable", Err: secret}
	if !errors.Is(wrapped, secret) {
		t.Errorf("errors.Is(%v, cause) = false, want true", wrapped)
	}
}

func TestHandler(t *testing.T) {
	secret := errors.New("password=hunter2")
	tests := []struct {
		name      string
		err       error
		wantBody  problem.Details
		wantLevel slog.Level
	}{
		{
			name:      "client error",
			err:       problem.Errorf(http.StatusNotFound, "order %q not found", "o-1"),
			wantBody:  problem.Details{Type: "about:blank", Title: "Not Found", Status: 404, Detail: `order "o-1" not found`, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
			wantLevel: slog.LevelDebug,
		},
		{
			name:      "server error hides its cause",
			err:       fmt.Errorf("save: %w", secret),
			wantBody:  problem.Details{Type: "about:blank", Title: "Internal Server Error", Status: 500, Detail: "internal error", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
			wantLevel: slog.LevelError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := problem.Handler(logger, func(http.ResponseWriter, *http.Request) error { return tt.err })

			sc := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
				SpanID:  trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
			})
			req := httptest.NewRequest("GET", "/orders/o-1", nil)
			req = req.WithContext(trace.ContextWithSpanContext(req.Context(), sc))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantBody.Status {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantBody.Status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != problem.ContentType {
				t.Errorf("Content-Type = %q, want %q", ct, problem.ContentType)
			}
			var got problem.Details
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if diff := cmp.Diff(tt.wantBody, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Errorf("body %q leaks the cause", rec.Body)
			}
			var rec1 struct {
				Level  string `json:"level"`
				Msg    string `json:"msg"`
				Status int    `json:"status"`
				Error  string `json:"error"`
			}
			if err := json.Unmarshal(logs.Bytes(), &rec1); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if rec1.Level != tt.wantLevel.String() || rec1.Status != tt.wantBody.Status || rec1.Error != tt.err.Error() {
				t.Errorf("log record = %+v, want level %v, status %d, error %q", rec1, tt.wantLevel, tt.wantBody.Status, tt.err)
			}
		})
	}
}

func TestHandlerSuccessWritesNothingExtra(t *testing.T) {
	h := problem.Handler(nil, func(w http.ResponseWriter, _ *http.Request) error {
		w.Write([]byte("ok"))
		return nil
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || rec.Body.String() != "ok" {
		t.Errorf("response = %d %q, want 200 \"ok\"", rec.Code, rec.Body)
	}
}
