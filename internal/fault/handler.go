package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"

	"github.com/cairnhq/cairn/problem"
)

// maxBody is the largest settings body [Handler] reads.
const maxBody = 4 << 10

// Handler serves the settings of injectors over HTTP, for operators and the
// demo's fault scenarios:
//
//	GET    /faults          every injector's settings and counts
//	GET    /faults/{name}   one injector's
//	PUT    /faults/{name}   replace its settings: {"error_rate":0.5,"latency":"200ms"}
//	DELETE /faults/{name}   inject nothing again
//
// A bad body is answered with 400 problem details naming the field; an
// unknown name with 404. Changes are logged to logger (nil discards them).
func Handler(logger *slog.Logger, injectors ...*Injector) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	byName := make(map[string]*Injector, len(injectors))
	for _, i := range injectors {
		byName[i.name] = i
	}
	h := &handler{logger: logger, byName: byName}
	mux := http.NewServeMux()
	mux.Handle("GET /faults", problem.Handler(logger, h.list))
	mux.Handle("GET /faults/{name}", problem.Handler(logger, h.get))
	mux.Handle("PUT /faults/{name}", problem.Handler(logger, h.put))
	mux.Handle("DELETE /faults/{name}", problem.Handler(logger, h.clear))
	return mux
}

type handler struct {
	logger *slog.Logger
	byName map[string]*Injector
}

// status is one injector as Handler shows it.
type status struct {
	Name     string   `json:"name"`
	Settings Settings `json:"settings"`
	Failed   int64    `json:"failed"`
	Delayed  int64    `json:"delayed"`
}

func statusOf(i *Injector) status {
	f, d := i.Counts()
	return status{Name: i.name, Settings: i.Settings(), Failed: f, Delayed: d}
}

func (h *handler) lookup(r *http.Request) (*Injector, error) {
	name := r.PathValue("name")
	i, ok := h.byName[name]
	if !ok {
		names := make([]string, 0, len(h.byName))
		for n := range h.byName {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, problem.Errorf(http.StatusNotFound, "no fault injector %q; there are %q", name, names)
	}
	return i, nil
}

func (h *handler) list(w http.ResponseWriter, _ *http.Request) error {
	out := make([]status, 0, len(h.byName))
	for _, i := range h.byName {
		out = append(out, statusOf(i))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return writeJSON(w, http.StatusOK, map[string]any{"faults": out})
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) error {
	i, err := h.lookup(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, statusOf(i))
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) error {
	i, err := h.lookup(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &problem.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("body exceeds %d bytes", mbe.Limit), Err: err}
	}
	if err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: "cannot read body", Err: err}
	}
	var s Settings
	if err := json.Unmarshal(body, &s); err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: err.Error(), Err: err}
	}
	if err := i.Set(s); err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: err.Error(), Err: err}
	}
	h.logger.InfoContext(r.Context(), "fault settings changed", slog.String("target", i.name),
		slog.Float64("error_rate", s.ErrorRate), slog.Duration("latency", s.Latency), slog.Float64("latency_rate", s.LatencyRate))
	return writeJSON(w, http.StatusOK, statusOf(i))
}

func (h *handler) clear(w http.ResponseWriter, r *http.Request) error {
	i, err := h.lookup(r)
	if err != nil {
		return err
	}
	_ = i.Set(Settings{})
	h.logger.InfoContext(r.Context(), "fault settings cleared", slog.String("target", i.name))
	return writeJSON(w, http.StatusOK, statusOf(i))
}

// writeJSON answers with v. It always returns nil: once the header is
// written, a failed write cannot be answered.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}
