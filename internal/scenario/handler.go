package scenario

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/problem"
)

//go:embed page.html
var pageHTML string

// page is the scenarios page; it is embedded and covered by tests, so a
// parse failure is a build defect.
var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"seconds": func(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) },
}).Parse(pageHTML))

// maxStartBody bounds the body of a start request.
const maxStartBody = 16 << 10

// Server serves the scenarios of a catalog over HTTP and runs one of them
// at a time against its Env. Create it with [Handler]. It is safe for
// concurrent use. A run started over HTTP runs in a goroutine the Server
// owns until the run ends, [Server.Close] stops it, or a stop request
// does.
type Server struct {
	env     Env
	catalog []*Scenario
	log     *slog.Logger
	h       http.Handler

	mu     sync.Mutex
	active *activeRun // nil when no run is in progress
	last   *Report    // of the active run so far, or of the last one
	closed bool
}

// activeRun is a run in progress.
type activeRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the run's goroutine has returned
}

// Handler returns a Server of catalog that runs scenarios against env and
// logs starts, stops and results to logger (nil discards them). It serves,
// relative to where it is mounted (mount it under a prefix with
// http.StripPrefix; its links are relative):
//
//	GET  /                               the page: scenarios with editable params, Start/Stop, live results
//	GET  /api/scenarios                  {"scenarios": [...]}: name, summary, rps, duration_ns, params, events, assertions
//	POST /api/scenarios/{name}/start     start one: a form or a JSON object {"params": {...}, "duration": "45s", "rps": 20}
//	POST /api/scenarios/stop             stop the running one, wait for its cleanup, answer the status
//	GET  /api/scenarios/status           {"running": bool, "report": the running or last Report, or null}
//
// A form's fields are the params by name, plus duration and rps; empty
// fields take the defaults. Start answers 202 with the status; 404 for an
// unknown scenario; 400 naming a bad param, duration or rps; 409 while
// another scenario runs; 503 after Close. Stop answers 409 when nothing
// runs. Errors are problem details. Cross-origin POSTs from browsers are
// refused (http.CrossOriginProtection), so that no other site's page can
// start a fault scenario. The page links the console's stylesheet at
// /static/console.css.
func Handler(env Env, catalog []*Scenario, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{env: env, catalog: catalog, log: logger}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", problem.Handler(logger, s.page))
	mux.Handle("GET /api/scenarios", problem.Handler(logger, s.list))
	mux.Handle("POST /api/scenarios/{name}/start", problem.Handler(logger, s.start))
	mux.Handle("POST /api/scenarios/stop", problem.Handler(logger, s.stop))
	mux.Handle("GET /api/scenarios/status", problem.Handler(logger, s.status))
	s.h = http.NewCrossOriginProtection().Handler(mux)
	return s
}

// ServeHTTP serves the page and the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "" {
		// Mounted under a prefix with http.StripPrefix and asked for the
		// prefix itself: the relative links need the trailing slash.
		w.Header().Set("Location", lastSegment(r.RequestURI)+"/")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	s.h.ServeHTTP(w, r)
}

// lastSegment returns the last path segment of a request URI, without
// its query.
func lastSegment(uri string) string {
	uri, _, _ = strings.Cut(uri, "?")
	return path.Base(uri)
}

// Close stops the running scenario, if any, and waits until it has
// cleaned up; later start requests are answered 503. It is safe to call
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	a := s.active
	s.mu.Unlock()
	if a != nil {
		a.cancel()
		<-a.done
	}
}

func (s *Server) lookup(name string) (*Scenario, error) {
	for _, sc := range s.catalog {
		if sc.Name == name {
			return sc, nil
		}
	}
	names := make([]string, len(s.catalog))
	for i, sc := range s.catalog {
		names[i] = sc.Name
	}
	return nil, problem.Errorf(http.StatusNotFound, "scenario: no scenario %q; there are %q", name, names)
}

// statusBody is the answer of the status endpoint.
type statusBody struct {
	Running bool    `json:"running"`
	Report  *Report `json:"report"`
}

func (s *Server) snapshot() statusBody {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := statusBody{Running: s.active != nil}
	if s.last != nil {
		r := s.last.clone()
		st.Report = &r
	}
	return st
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) error {
	st := s.snapshot()
	var b bytes.Buffer
	if err := page.Execute(&b, struct {
		Scenarios []*Scenario
		Running   bool
		Report    *Report
	}{s.catalog, st.Running, st.Report}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
	return nil
}

// scenarioInfo describes a scenario for the list endpoint.
type scenarioInfo struct {
	Name       string          `json:"name"`
	Summary    string          `json:"summary"`
	RPS        float64         `json:"rps"`
	Duration   time.Duration   `json:"duration_ns"`
	Params     []Param         `json:"params"`
	Events     []eventInfo     `json:"events"`
	Assertions []assertionInfo `json:"assertions"`
}

type eventInfo struct {
	At   float64 `json:"at"` // fraction of the duration
	Name string  `json:"name"`
}

type assertionInfo struct {
	Name        string        `json:"name"`
	Kind        Kind          `json:"kind"`
	After       string        `json:"after,omitempty"`
	Within      time.Duration `json:"within_ns,omitempty"`
	WithinParam string        `json:"within_param,omitempty"`
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) error {
	out := make([]scenarioInfo, 0, len(s.catalog))
	for _, sc := range s.catalog {
		info := scenarioInfo{Name: sc.Name, Summary: sc.Summary, RPS: sc.RPS, Duration: sc.Duration,
			Params: append([]Param{}, sc.Params...), Events: []eventInfo{}, Assertions: []assertionInfo{}}
		for _, e := range sc.Timeline {
			info.Events = append(info.Events, eventInfo{At: e.At, Name: e.Name})
		}
		for _, a := range sc.Assertions {
			info.Assertions = append(info.Assertions, assertionInfo{Name: a.Name, Kind: a.Kind, After: a.After, Within: a.Within, WithinParam: a.WithinParam})
		}
		out = append(out, info)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"scenarios": out})
}

// startRequest is what a start request asks for.
type startRequest struct {
	params   map[string]string
	duration string
	rps      string
}

// readStart reads a start request from a JSON or form body.
func readStart(w http.ResponseWriter, r *http.Request) (startRequest, error) {
	req := startRequest{params: make(map[string]string)}
	r.Body = http.MaxBytesReader(w, r.Body, maxStartBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var body struct {
			Params   map[string]json.RawMessage `json:"params"`
			Duration json.RawMessage            `json:"duration"`
			RPS      json.RawMessage            `json:"rps"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return req, &problem.Error{Status: http.StatusBadRequest, Detail: "scenario: start: " + err.Error(), Err: err}
		}
		for k, v := range body.Params {
			req.params[k] = jsonText(v)
		}
		req.duration, req.rps = jsonText(body.Duration), jsonText(body.RPS)
		return req, nil
	}
	if err := r.ParseForm(); err != nil {
		return req, &problem.Error{Status: http.StatusBadRequest, Detail: "scenario: start: " + err.Error(), Err: err}
	}
	for k, vs := range r.PostForm {
		v := strings.TrimSpace(vs[len(vs)-1])
		switch k {
		case "duration":
			req.duration = v
		case "rps":
			req.rps = v
		default:
			req.params[k] = v
		}
	}
	return req, nil
}

// jsonText returns a JSON string's content, or any other JSON value as
// written (a number), or "" for null or nothing.
func jsonText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	if t := strings.TrimSpace(string(v)); t != "null" {
		return t
	}
	return ""
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	sc, err := s.lookup(r.PathValue("name"))
	if err != nil {
		return err
	}
	req, err := readStart(w, r)
	if err != nil {
		return err
	}
	params, err := sc.ParseParams(req.params)
	if err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: err.Error(), Err: err}
	}
	opts := Options{OnUpdate: s.setReport}
	if req.duration != "" {
		if opts.Duration, err = time.ParseDuration(req.duration); err != nil || opts.Duration <= 0 {
			return problem.Errorf(http.StatusBadRequest, "scenario: duration %q: want a positive duration such as 45s", req.duration)
		}
	}
	if req.rps != "" {
		if opts.RPS, err = strconv.ParseFloat(req.rps, 64); err != nil || !(opts.RPS > 0) || opts.RPS > 1e6 {
			return problem.Errorf(http.StatusBadRequest, "scenario: rps %q: want a positive number of requests per second", req.rps)
		}
	}

	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return problem.Errorf(http.StatusServiceUnavailable, "scenario: the server is shutting down")
	case s.active != nil:
		running := s.last.Scenario
		s.mu.Unlock()
		return problem.Errorf(http.StatusConflict, "scenario: %s is running; stop it before starting %s", running, sc.Name)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	a := &activeRun{cancel: cancel, done: make(chan struct{})}
	s.active = a
	s.last = &Report{Scenario: sc.Name, Params: params, Phase: PhaseRunning,
		Events: []EventResult{}, Assertions: []Result{}, Cleanup: []string{}, Errors: []string{}}
	s.mu.Unlock()

	s.log.InfoContext(r.Context(), "scenario started", slog.String("scenario", sc.Name), slog.String("params", params.String()))
	go func() {
		defer close(a.done)
		defer cancel()
		rep, err := Run(ctx, s.env, sc, params, opts)
		level := slog.LevelInfo
		if err != nil {
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "scenario ended", slog.String("scenario", sc.Name), slog.Bool("passed", rep.Passed()),
			slog.String("phase", string(rep.Phase)), slog.Any("error", err))
		s.mu.Lock()
		defer s.mu.Unlock()
		if rep.Scenario != "" {
			s.last = &rep
		} else if err != nil {
			s.last.Phase, s.last.Errors = PhaseAborted, []string{err.Error()}
		}
		s.active = nil
	}()
	return writeJSON(w, http.StatusAccepted, s.snapshot())
}

// setReport keeps the report of the running scenario.
func (s *Server) setReport(r Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = &r
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	a := s.active
	s.mu.Unlock()
	if a == nil {
		return problem.Errorf(http.StatusConflict, "scenario: no scenario is running")
	}
	a.cancel()
	select {
	case <-a.done:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	s.log.InfoContext(r.Context(), "scenario stopped")
	return writeJSON(w, http.StatusOK, s.snapshot())
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, s.snapshot())
}

// writeJSON answers code with v as JSON. It encodes before writing, so a
// failure leaves the response to the error adapter.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
	return nil
}
