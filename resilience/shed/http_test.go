package shed

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestWriteHTTP(t *testing.T) {
	tests := []struct {
		ra   time.Duration
		want string
	}{
		{100 * time.Millisecond, "1"},
		{0, "1"},
		{time.Second, "1"},
		{1001 * time.Millisecond, "2"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		err := fmt.Errorf("handler: %w", &ShedError{Name: "api", RetryAfter: tt.ra})
		if !WriteHTTP(w, err) {
			t.Fatalf("WriteHTTP(%v) = false", tt.ra)
		}
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("code = %d, want 503", w.Code)
		}
		if got := w.Header().Get("Retry-After"); got != tt.want {
			t.Errorf("RetryAfter %v: Retry-After = %q, want %q", tt.ra, got, tt.want)
		}
	}
	for _, err := range []error{nil, errors.New("boom"), ErrShed} {
		w := httptest.NewRecorder()
		if WriteHTTP(w, err) {
			t.Errorf("WriteHTTP(%v) = true, want false", err)
		}
		if w.Code != http.StatusOK || w.Body.Len() != 0 || len(w.Header()) != 0 {
			t.Errorf("WriteHTTP(%v) wrote something", err)
		}
	}
}
