package degrade

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func do(t *testing.T, h http.Handler, method, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, "/degrade", strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerGet(t *testing.T) {
	sig := &fakeSignal{}
	s := newTest(t, sig)
	sig.Set(0.75)
	s.Update(t.Context(), fixedNow)
	rec := do(t, s.Handler(nil), "GET", "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET = %d %q, want 200 application/json", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got Status
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("GET body %s: %v", rec.Body, err)
	}
	want := Status{
		Name: "api", Level: 2, LevelName: "expensive", Pressure: 0.75,
		Levels: []LevelStatus{
			{Level: 0, Name: "full"},
			{Level: 1, Name: "optional", Enter: 0.5, Exit: 0.4},
			{Level: 2, Name: "expensive", Enter: 0.7, Exit: 0.6},
			{Level: 3, Name: "essential", Enter: 0.9, Exit: 0.8},
		},
		Features: []FeatureStatus{
			{Name: "audit", OffAt: 3, Enabled: true},
			{Name: "recommendations", OffAt: 1, Enabled: false},
			{Name: "suggestions", OffAt: 2, Enabled: false},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET status mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(rec.Body.String(), `"level_name":"expensive"`) || !strings.Contains(rec.Body.String(), `"off_at":1`) {
		t.Errorf("GET body = %s, want snake_case keys", rec.Body)
	}
}

func TestHandlerPut(t *testing.T) {
	var logs bytes.Buffer
	s := newTest(t, nil)
	h := s.Handler(slog.New(slog.NewTextHandler(&logs, nil)))
	tests := []struct {
		body       string
		code       int
		want       string // substring of the body
		level      int
		forced     bool
		wantDetail bool
	}{
		{`{"level":2}`, 200, `"level":2,"level_name":"expensive","forced":true`, 2, true, false},
		{`{"level":0}`, 200, `"level":0,"level_name":"full","forced":true`, 0, true, false},
		{`{"auto":true}`, 200, `"forced":false`, 0, false, false},
		{` {"level":3} `, 200, `"level":3`, 3, true, false},
		{`{"level":4}`, 400, `no level 4: want 0 to 3`, 3, true, true},
		{`{"level":-1}`, 400, `no level -1`, 3, true, true},
		{`{"level":1,"auto":true}`, 400, `bad body`, 3, true, true},
		{`{"auto":false}`, 400, `bad body`, 3, true, true},
		{`{}`, 400, `bad body`, 3, true, true},
		{`{"lvl":1}`, 400, `bad body`, 3, true, true},
		{`{"level":"2"}`, 400, `bad body`, 3, true, true},
		{`{"level":1}{"level":2}`, 400, `bad body`, 3, true, true},
		{`2`, 400, `bad body`, 3, true, true},
		{``, 400, `bad body`, 3, true, true},
		{`{"level":1,"pad":"` + strings.Repeat("x", maxBody) + `"}`, 413, `body exceeds 1024 bytes`, 3, true, true},
	}
	for _, tt := range tests {
		rec := do(t, h, "PUT", tt.body)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("PUT %.40q = %d %s, want %d containing %s", tt.body, rec.Code, rec.Body, tt.code, tt.want)
		}
		if tt.wantDetail && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("PUT %.40q Content-Type = %q, want application/problem+json", tt.body, rec.Header().Get("Content-Type"))
		}
		if s.Level() != tt.level || s.Forced() != tt.forced {
			t.Errorf("after PUT %.40q: Level, Forced = %d, %v, want %d, %v", tt.body, s.Level(), s.Forced(), tt.level, tt.forced)
		}
	}
	for _, want := range []string{"degradation level forced", "from=2 to=0", "degradation level handed back"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs = %s, want them to contain %q", logs.String(), want)
		}
	}
}

func TestHandlerMethods(t *testing.T) {
	h := newTest(t, nil).Handler(nil)
	if rec := do(t, h, "HEAD", ""); rec.Code != http.StatusOK {
		t.Errorf("HEAD = %d, want 200", rec.Code)
	}
	for _, m := range []string{"POST", "DELETE", "PATCH"} {
		rec := do(t, h, m, `{"level":1}`)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD, PUT" ||
			rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s = %d Allow %q Content-Type %q, want 405 problem+json with Allow: GET, HEAD, PUT",
				m, rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Content-Type"))
		}
	}
}
