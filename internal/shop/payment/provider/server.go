package provider

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/problem"
)

// ServerConfig configures a simulated provider. The zero value is a
// provider that never fails and declines only TokenDecline.
type ServerConfig struct {
	// Faults, if set, is injected into every request before it is
	// handled: its latency delays the request, and its errors answer
	// 503 with a Retry-After header and no effect. Default nil.
	Faults *fault.Injector
	// DeclineRate in [0, 1] is the fraction of charges of a succeeding
	// token that are declined with reason "insufficient funds". Default 0.
	DeclineRate float64
	// Seed seeds the random numbers DeclineRate draws, so that a run is
	// reproducible. Default 0, a seed like any other.
	Seed uint64
	// RetryAfter is the delay the Retry-After header of an injected 503
	// asks for, rounded up to whole seconds. Default 0: "Retry-After: 0".
	RetryAfter time.Duration
	// Logger receives a record per request that failed. Default: discarded.
	Logger *slog.Logger
	// Now returns the current time for the records' timestamps. Default
	// time.Now.
	Now func() time.Time
}

// maxBody is the largest request body the server reads.
const maxBody = 64 << 10

// Server is a simulated payment provider with its state in memory. It is
// safe for concurrent use.
type Server struct {
	cfg     ServerConfig
	handler http.Handler

	mu       sync.Mutex // guards the fields below
	rnd      *rand.Rand
	charges  map[string]*Charge // by id
	order    []string           // charge ids in creation order
	byKey    map[string]keyed   // charges by idempotency key
	refunds  map[string]keyedRefund
	captures map[string]int // captured charges made per idempotency key
	refunded map[string]int // refunds made per charge id
}

// keyed is a charge made with an idempotency key, and the request that made it.
type keyed struct {
	id  string
	req ChargeRequest
}

// keyedRefund is a refund made with an idempotency key.
type keyedRefund struct {
	refund Refund
}

// NewServer returns a provider with no charges.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:      cfg,
		rnd:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		charges:  map[string]*Charge{},
		byKey:    map[string]keyed{},
		refunds:  map[string]keyedRefund{},
		captures: map[string]int{},
		refunded: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/charges", s.wrap(s.createCharge))
	mux.Handle("GET /v1/charges", s.wrap(s.findCharge))
	mux.Handle("GET /v1/charges/{id}", s.wrap(s.getCharge))
	mux.Handle("POST /v1/refunds", s.wrap(s.createRefund))
	s.handler = mux
	return s
}

// Handler returns the provider's HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// Charges returns a copy of every charge made, in creation order.
func (s *Server) Charges() []Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Charge, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.charges[id])
	}
	return out
}

// CaptureCount returns how many captured charges the provider made with
// idempotency key key: at most 1, however often the key was sent.
func (s *Server) CaptureCount(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.captures[key]
}

// RefundCount returns how many refunds the provider made of charge id: at
// most 1.
func (s *Server) RefundCount(chargeID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refunded[chargeID]
}

// wrap adapts fn to http.Handler, injecting the configured faults first.
func (s *Server) wrap(fn problem.HandlerFunc) http.Handler {
	return problem.Handler(s.cfg.Logger, func(w http.ResponseWriter, r *http.Request) error {
		if s.cfg.Faults != nil {
			if err := s.cfg.Faults.Inject(r.Context()); err != nil {
				if r.Context().Err() != nil {
					return err
				}
				secs := int64(math.Ceil(max(s.cfg.RetryAfter, 0).Seconds()))
				w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
				return &problem.Error{Status: http.StatusServiceUnavailable, Detail: "the provider is unavailable, try again later", Err: err}
			}
		}
		return fn(w, r)
	})
}

// decode reads r's JSON body into v, rejecting unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	return nil
}

// reply writes v as JSON with status 200.
func reply(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// idempotencyKey returns r's Idempotency-Key header or a 400.
func idempotencyKey(r *http.Request) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return "", problem.Errorf(http.StatusBadRequest, "the Idempotency-Key header is required")
	}
	if len(k) > 255 {
		return "", problem.Errorf(http.StatusBadRequest, "the Idempotency-Key header is longer than 255 bytes")
	}
	return k, nil
}

// validate checks a charge request's fields.
func (c ChargeRequest) validate() error {
	switch {
	case c.AmountMinor <= 0:
		return problem.Errorf(http.StatusBadRequest, "amount_minor must be positive, got %d", c.AmountMinor)
	case len(c.Currency) != 3 || strings.ToUpper(c.Currency) != c.Currency || strings.Trim(c.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "":
		return problem.Errorf(http.StatusBadRequest, "currency must be three upper-case letters, got %q", c.Currency)
	case c.PaymentMethod == "":
		return problem.Errorf(http.StatusBadRequest, "payment_method is required")
	case !strings.HasPrefix(c.PaymentMethod, "tok_"):
		return problem.Errorf(http.StatusBadRequest, "payment_method %q is not a token", c.PaymentMethod)
	}
	return nil
}

// mismatch names the first field in which a differs from b, or "".
func (c ChargeRequest) mismatch(b ChargeRequest) string {
	switch {
	case c.AmountMinor != b.AmountMinor:
		return fmt.Sprintf("amount_minor %d, first sent as %d", c.AmountMinor, b.AmountMinor)
	case c.Currency != b.Currency:
		return fmt.Sprintf("currency %q, first sent as %q", c.Currency, b.Currency)
	case c.PaymentMethod != b.PaymentMethod:
		return fmt.Sprintf("payment_method %q, first sent as %q", c.PaymentMethod, b.PaymentMethod)
	}
	return ""
}

func (s *Server) createCharge(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req ChargeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	if k, ok := s.byKey[key]; ok {
		c := *s.charges[k.id]
		s.mu.Unlock()
		if m := req.mismatch(k.req); m != "" {
			return problem.Errorf(http.StatusUnprocessableEntity, "Idempotency-Key %q was used with a different request: %s", key, m)
		}
		return reply(w, c)
	}
	switch req.PaymentMethod {
	case TokenExpired:
		s.mu.Unlock()
		return problem.Errorf(http.StatusPaymentRequired, "payment method %s has expired", req.PaymentMethod)
	case TokenRevoked:
		s.mu.Unlock()
		return problem.Errorf(http.StatusPaymentRequired, "payment method %s was revoked", req.PaymentMethod)
	}
	c := &Charge{
		ID:             fmt.Sprintf("ch_%06d", len(s.order)+1),
		Status:         StatusCaptured,
		AmountMinor:    req.AmountMinor,
		Currency:       req.Currency,
		PaymentMethod:  req.PaymentMethod,
		IdempotencyKey: key,
		Created:        s.cfg.Now().UTC(),
	}
	switch {
	case req.PaymentMethod == TokenDecline:
		c.Status, c.DeclineReason = StatusDeclined, "card declined"
	case s.cfg.DeclineRate > 0 && s.rnd.Float64() < s.cfg.DeclineRate:
		c.Status, c.DeclineReason = StatusDeclined, "insufficient funds"
	}
	s.charges[c.ID] = c
	s.order = append(s.order, c.ID)
	s.byKey[key] = keyed{id: c.ID, req: req}
	if c.Status == StatusCaptured {
		s.captures[key]++
	}
	out := *c
	s.mu.Unlock()
	return reply(w, out)
}

func (s *Server) getCharge(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	s.mu.Lock()
	c, ok := s.charges[id]
	var out Charge
	if ok {
		out = *c
	}
	s.mu.Unlock()
	if !ok {
		return problem.Errorf(http.StatusNotFound, "no charge %q", id)
	}
	return reply(w, out)
}

func (s *Server) findCharge(w http.ResponseWriter, r *http.Request) error {
	key := r.URL.Query().Get("idempotency_key")
	if key == "" {
		return problem.Errorf(http.StatusBadRequest, "the query parameter idempotency_key is required")
	}
	s.mu.Lock()
	k, ok := s.byKey[key]
	var out Charge
	if ok {
		out = *s.charges[k.id]
	}
	s.mu.Unlock()
	if !ok {
		return problem.Errorf(http.StatusNotFound, "no charge with idempotency key %q", key)
	}
	return reply(w, out)
}

func (s *Server) createRefund(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req refundRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.ChargeID == "" {
		return problem.Errorf(http.StatusBadRequest, "charge_id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.refunds[key]; ok {
		if k.refund.ChargeID != req.ChargeID {
			return problem.Errorf(http.StatusUnprocessableEntity, "Idempotency-Key %q was used with a different request: charge_id %q, first sent as %q", key, req.ChargeID, k.refund.ChargeID)
		}
		return reply(w, k.refund)
	}
	c, ok := s.charges[req.ChargeID]
	switch {
	case !ok:
		return problem.Errorf(http.StatusNotFound, "no charge %q", req.ChargeID)
	case c.Status == StatusDeclined:
		return problem.Errorf(http.StatusConflict, "charge %s was declined: there is nothing to refund", c.ID)
	case c.Refunded:
		return problem.Errorf(http.StatusConflict, "charge %s is already refunded by %s", c.ID, c.RefundID)
	}
	ref := Refund{
		ID:             fmt.Sprintf("re_%06d", len(s.refunds)+1),
		ChargeID:       c.ID,
		Status:         "succeeded",
		AmountMinor:    c.AmountMinor,
		Currency:       c.Currency,
		IdempotencyKey: key,
		Created:        s.cfg.Now().UTC(),
	}
	c.Refunded, c.RefundID = true, ref.ID
	s.refunds[key] = keyedRefund{refund: ref}
	s.refunded[c.ID]++
	return reply(w, ref)
}
