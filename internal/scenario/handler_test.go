package scenario

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// do sends one request to h and returns the status and body.
func do(t *testing.T, h http.Handler, method, target, contentType, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func decodeStatus(t *testing.T, body string) statusBody {
	t.Helper()
	var st struct {
		Running bool `json:"running"`
		Report  *struct {
			Scenario   string            `json:"scenario"`
			Phase      Phase             `json:"phase"`
			Params     map[string]string `json:"params"`
			Duration   time.Duration     `json:"duration_ns"`
			RPS        float64           `json:"rps"`
			Assertions []struct {
				Name  string `json:"name"`
				State State  `json:"state"`
			} `json:"assertions"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status %s: %v", body, err)
	}
	out := statusBody{Running: st.Running}
	if r := st.Report; r != nil {
		out.Report = &Report{Scenario: r.Scenario, Phase: r.Phase, Duration: r.Duration, RPS: r.RPS}
		out.Report.Params.text = r.Params
		for _, a := range r.Assertions {
			out.Report.Assertions = append(out.Report.Assertions, Result{Name: a.Name, State: a.State})
		}
	}
	return out
}

const form = "application/x-www-form-urlencoded"

func TestHandlerStartStopStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		h := Handler(env, Catalog(), nil)
		defer h.Close()

		code, body := do(t, h, "GET", "/api/scenarios/status", "", "")
		if st := decodeStatus(t, body); code != 200 || st.Running || st.Report != nil {
			t.Errorf("status before any run = %d %s", code, body)
		}

		code, body = do(t, h, "POST", "/api/scenarios/payment-outage/start", "application/json",
			`{"params": {"error_rate": 0.5, "open_within": "5s"}, "duration": "1h", "rps": 7}`)
		if code != http.StatusAccepted {
			t.Fatalf("start = %d %s, want 202", code, body)
		}
		synctest.Wait()
		code, body = do(t, h, "GET", "/api/scenarios/status", "", "")
		st := decodeStatus(t, body)
		if code != 200 || !st.Running || st.Report.Scenario != "payment-outage" || st.Report.Phase != PhaseRunning ||
			st.Report.Params.text["error_rate"] != "0.5" || st.Report.Duration != time.Hour || st.Report.RPS != 7 {
			t.Errorf("status while running = %d %s", code, body)
		}
		if _, _, load := env.state(); load != 7 {
			t.Errorf("load = %v, want 7", load)
		}

		code, body = do(t, h, "POST", "/api/scenarios/inventory-flaky/start", form, "")
		if code != http.StatusConflict || !strings.Contains(body, "payment-outage is running") {
			t.Errorf("second start = %d %s, want 409 naming the running scenario", code, body)
		}

		time.Sleep(20 * time.Minute) // the fault is on from 12m to 36m
		if faults, _, _ := env.state(); faults[TargetPaymentProvider].ErrorRate != 0.5 {
			t.Errorf("faults at 20m = %v, want the payment provider failing at 0.5", faults)
		}
		code, body = do(t, h, "POST", "/api/scenarios/stop", form, "")
		st = decodeStatus(t, body)
		if code != 200 || st.Running || st.Report.Phase != PhaseStopped {
			t.Errorf("stop = %d %s, want 200 and a stopped report", code, body)
		}
		if !env.healthy() {
			t.Errorf("after stop the env is not restored: %v", env.callList())
		}
		if code, body := do(t, h, "POST", "/api/scenarios/stop", form, ""); code != http.StatusConflict {
			t.Errorf("stop with nothing running = %d %s, want 409", code, body)
		}
	})
}

func TestHandlerRunsToTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		newShop(env, true)
		h := Handler(env, Catalog(), nil)
		defer h.Close()
		v := url.Values{"duration": {"30s"}, "error_rate": {"0.8"}, "max_edge_errors": {""}}
		if code, body := do(t, h, "POST", "/api/scenarios/payment-outage/start", form, v.Encode()); code != http.StatusAccepted {
			t.Fatalf("start = %d %s", code, body)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		_, body := do(t, h, "GET", "/api/scenarios/status", "", "")
		st := decodeStatus(t, body)
		if st.Running || st.Report.Phase != PhaseDone || st.Report.Params.text["max_edge_errors"] != "0.01" {
			t.Errorf("status after the run = %s", body)
		}
		for _, a := range st.Report.Assertions {
			if a.State != Passed {
				t.Errorf("assertion %q: %s, want passed", a.Name, a.State)
			}
		}
		if !env.healthy() {
			t.Errorf("env not restored: %v", env.callList())
		}
	})
}

func TestHandlerRejects(t *testing.T) {
	env := newFakeEnv()
	h := Handler(env, Catalog(), nil)
	defer h.Close()
	for _, tc := range []struct {
		name, target, contentType, body string
		code                            int
		detail                          string
	}{
		{"unknown scenario", "/api/scenarios/nope/start", form, "", 404, `no scenario \"nope\"`},
		{"bad rate", "/api/scenarios/payment-outage/start", form, "error_rate=2", 400, `param error_rate = \"2\": want a number in [0, 1]`},
		{"bad duration param", "/api/scenarios/payment-outage/start", form, "open_within=soon", 400, `param open_within = \"soon\"`},
		{"unknown param", "/api/scenarios/payment-outage/start", form, "errorrate=1", 400, `payment-outage has no param \"errorrate\"`},
		{"bad run duration", "/api/scenarios/payment-outage/start", form, "duration=-5s", 400, `duration \"-5s\": want a positive duration`},
		{"bad rps", "/api/scenarios/payment-outage/start", form, "rps=lots", 400, `rps \"lots\"`},
		{"bad JSON param", "/api/scenarios/payment-latency/start", "application/json", `{"params": {"latency": 2}}`, 400, `param latency = \"2\"`},
		{"unknown JSON field", "/api/scenarios/payment-latency/start", "application/json", `{"param": {}}`, 400, `unknown field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, h, "POST", tc.target, tc.contentType, tc.body)
			if code != tc.code || !strings.Contains(body, tc.detail) {
				t.Errorf("POST %s %q = %d %s; want %d with %s", tc.target, tc.body, code, body, tc.code, tc.detail)
			}
		})
	}
	if calls := env.callList(); len(calls) != 0 {
		t.Errorf("rejected starts called the env: %v", calls)
	}

	r := httptest.NewRequest("POST", "/api/scenarios/payment-outage/start", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("cross-site start = %d, want 403", w.Code)
	}

	h.Close()
	if code, body := do(t, h, "POST", "/api/scenarios/payment-outage/start", form, ""); code != http.StatusServiceUnavailable {
		t.Errorf("start after Close = %d %s, want 503", code, body)
	}
}

func TestHandlerCloseStopsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newFakeEnv()
		h := Handler(env, Catalog(), nil)
		if code, body := do(t, h, "POST", "/api/scenarios/shipping-down/start", form, "duration=1m"); code != http.StatusAccepted {
			t.Fatalf("start = %d %s", code, body)
		}
		time.Sleep(20 * time.Second) // shipping is down from 15s to 36s
		if _, killed, _ := env.state(); !killed[ServiceShipping] {
			t.Fatalf("shipping not killed at 20s: %v", env.callList())
		}
		h.Close()
		if !env.healthy() {
			t.Errorf("after Close the env is not restored: %v", env.callList())
		}
	})
}

func TestHandlerPageAndList(t *testing.T) {
	h := Handler(newFakeEnv(), Catalog(), nil)
	defer h.Close()
	code, body := do(t, h, "GET", "/", "", "")
	if code != 200 {
		t.Fatalf("GET / = %d %s", code, body)
	}
	for _, want := range []string{
		`<link rel="stylesheet" href="/static/console.css">`,
		`action="api/scenarios/payment-outage/start"`,
		`<input name="error_rate" value="1"`,
		`<input name="open_within" value="10s"`,
		`<input name="duration" value="45s"`,
		`fetch("api/scenarios/status"`,
		"orchestrator-crash", "broker-outage",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("page loads something from the network")
	}

	code, body = do(t, h, "GET", "/api/scenarios", "", "")
	var list struct {
		Scenarios []struct {
			Name       string  `json:"name"`
			Params     []Param `json:"params"`
			Assertions []struct {
				Kind        string `json:"kind"`
				WithinParam string `json:"within_param"`
			} `json:"assertions"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("GET /api/scenarios = %d %s (%v)", code, body, err)
	}
	if len(list.Scenarios) != 6 || list.Scenarios[0].Name != "payment-outage" || list.Scenarios[0].Params[0].Type != Rate ||
		list.Scenarios[0].Assertions[0].Kind != "eventually" || list.Scenarios[0].Assertions[0].WithinParam != "open_within" {
		t.Errorf("GET /api/scenarios = %s", body)
	}

	// Mounted under a prefix and asked for it without the slash.
	mux := http.NewServeMux()
	mux.Handle("/scenarios/", http.StripPrefix("/scenarios", h))
	mux.Handle("/scenarios", http.StripPrefix("/scenarios", h))
	r := httptest.NewRequest("GET", "/scenarios", nil)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "scenarios/" {
		t.Errorf("GET /scenarios = %d to %q, want 301 to scenarios/", w.Code, w.Header().Get("Location"))
	}
	r = httptest.NewRequest("GET", "/scenarios/api/scenarios/status", nil)
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("GET /scenarios/api/scenarios/status = %d", w.Code)
	}
}
