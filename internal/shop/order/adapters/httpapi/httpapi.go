// Package httpapi serves the order service as JSON over HTTP.
//
// Routes (Go 1.22+ [http.ServeMux] patterns):
//
//	POST /orders        place an order: 201, the order, and a Location header
//	GET  /orders/{id}   one order: 200, or 404
//	GET  /orders        newest orders, ?limit=N: 200 and {"orders": [...]}
//	GET  /healthz       liveness: 200 "ok"
//
// Errors of these routes are RFC 9457 problem details
// (application/problem+json) carrying the trace ID of the request's span.
// Requests matching no route get the ServeMux's plain-text 404, or 405 with
// an Allow header.
//
// The handler does not instrument itself: wrap it with otelhttp.NewHandler.
// [NewHandler] returns the ServeMux itself, so the mux sets
// [http.Request.Pattern] on the very request otelhttp holds, and otelhttp
// renames its server span to "{method} {route}" (for example
// "GET /orders/{id}"). The handler also sets http.route on the span it finds
// in the request context.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/problem"
)

// MaxBodyBytes is the largest request body the handler reads; larger bodies
// are rejected with 413.
const MaxBodyBytes = 1 << 20

// Service is what the handler needs of the order use cases. *app.Service
// implements it. Implementations must be safe for concurrent use, and return
// errors matching domain.ErrInvalid (holding a *domain.ValidationError),
// domain.ErrNotFound, domain.ErrAlreadyExists or app.ErrUnavailable
// (answered 503 with Retry-After) where those apply.
type Service interface {
	// PlaceOrder validates and stores a new order.
	PlaceOrder(ctx context.Context, cmd app.PlaceOrder) (domain.Order, error)
	// GetOrder returns one order by ID.
	GetOrder(ctx context.Context, id string) (domain.Order, error)
	// ListOrders returns up to limit orders, newest first.
	ListOrders(ctx context.Context, limit int) ([]domain.Order, error)
}

var _ Service = (*app.Service)(nil)

// StatsService is what GET /customers/{id}/stats needs; the route exists
// only when the Service implements it, as *app.Service does.
type StatsService interface {
	// CustomerStats returns a customer's order statistics.
	CustomerStats(ctx context.Context, id string) (domain.CustomerStats, error)
}

// CustomerStats is the body of GET /customers/{id}/stats.
type CustomerStats struct {
	// CustomerID identifies the customer.
	CustomerID string `json:"customer_id"`
	// Orders is how many orders the customer has placed.
	Orders int64 `json:"orders"`
	// Total is the sum of their totals, in cents.
	Total int64 `json:"total"`
	// LastOrderAt is when the customer last placed an order, RFC 3339 in
	// UTC.
	LastOrderAt time.Time `json:"last_order_at"`
}

// customerStats answers GET /customers/{id}/stats.
func (a *api) customerStats(st StatsService, w http.ResponseWriter, r *http.Request) error {
	s, err := st.CustomerStats(r.Context(), r.PathValue("id"))
	if errors.Is(err, domain.ErrNotFound) {
		return &problem.Error{Status: http.StatusNotFound, Err: err,
			Detail: fmt.Sprintf("no statistics for customer %q: no orders, or none that the statistics have caught up with", r.PathValue("id"))}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, CustomerStats{CustomerID: s.CustomerID, Orders: s.Orders, Total: s.Total, LastOrderAt: s.LastOrderAt})
}

// PlaceOrderRequest is the body of POST /orders. Unknown fields are rejected.
type PlaceOrderRequest struct {
	// CustomerID identifies the customer placing the order.
	CustomerID string `json:"customer_id"`
	// Lines are the order lines; at least one is required.
	Lines []Line `json:"lines"`
	// PaymentMethod is the token of the payment method to charge, issued
	// by the payment provider ("tok_visa" succeeds, "tok_decline" is
	// declined, with the simulated provider). Optional: a service with a
	// checkout uses app.DefaultPaymentMethod.
	PaymentMethod string `json:"payment_method,omitempty"`
	// ShipTo is where to ship. Optional: a service with a checkout uses
	// app.DefaultShipTo.
	ShipTo *Address `json:"ship_to,omitempty"`
}

// Address is a shipping address on the wire.
type Address struct {
	// Recipient is the name on the parcel.
	Recipient string `json:"recipient"`
	// Lines are the street lines, most specific first.
	Lines []string `json:"lines"`
	// Locality is the city.
	Locality string `json:"locality"`
	// PostalCode is the postal code, where the country uses them.
	PostalCode string `json:"postal_code,omitempty"`
	// RegionCode is the ISO 3166-1 alpha-2 country code, such as "DE".
	RegionCode string `json:"region_code"`
}

// Line is one order line on the wire.
type Line struct {
	// SKU identifies the product.
	SKU string `json:"sku"`
	// Quantity is the number of units, 1 to 1000.
	Quantity int `json:"quantity"`
	// UnitPrice is the price of one unit in cents.
	UnitPrice int64 `json:"unit_price"`
}

// Order is an order on the wire, the body of 201 and 200 responses.
type Order struct {
	// ID identifies the order; Location is "/orders/" + ID.
	ID string `json:"id"`
	// CustomerID identifies the customer who placed the order.
	CustomerID string `json:"customer_id"`
	// Status is the order status, such as "placed".
	Status string `json:"status"`
	// Lines are the order lines in the order given.
	Lines []Line `json:"lines"`
	// Total is the order total in cents.
	Total int64 `json:"total"`
	// CreatedAt is when the order was placed, RFC 3339 in UTC.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the status last changed, RFC 3339 in UTC.
	UpdatedAt time.Time `json:"updated_at"`
	// StatusReason says why an order is compensating, cancelled or
	// failed.
	StatusReason string `json:"status_reason,omitempty"`
	// SagaID identifies the order's checkout saga, once it started.
	SagaID string `json:"saga_id,omitempty"`
}

// OrderList is the body of GET /orders.
type OrderList struct {
	// Orders are the orders, newest first; never null.
	Orders []Order `json:"orders"`
}

// handlerFunc is an HTTP handler that returns an error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// api holds the dependencies of the handlers.
type api struct {
	svc Service
	log *slog.Logger
}

// NewHandler returns the HTTP handler of the order service, backed by svc.
// Server errors (5xx) are logged to logger with the request context, so a
// trace-aware handler correlates them; nil logger discards them. The returned
// handler is safe for concurrent use.
func NewHandler(svc Service, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &api{svc: svc, log: logger}
	mux := http.NewServeMux()
	a.handle(mux, "POST /orders", a.placeOrder)
	a.handle(mux, "GET /orders/{id}", a.getOrder)
	a.handle(mux, "GET /orders", a.listOrders)
	if st, ok := svc.(StatsService); ok {
		a.handle(mux, "GET /customers/{id}/stats", func(w http.ResponseWriter, r *http.Request) error {
			return a.customerStats(st, w, r)
		})
	}
	a.handle(mux, "GET /healthz", a.healthz)
	return mux
}

// handle registers fn under pattern, adapting its error return.
func (a *api) handle(mux *http.ServeMux, pattern string, fn handlerFunc) {
	method, route, _ := strings.Cut(pattern, " ")
	name := method + " " + route
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		// Name the server span here, where the route is known: a
		// middleware between otelhttp and this mux (resiliencehttp, the
		// degrade switch) passes a copy of the request, so otelhttp never
		// sees the Pattern the mux sets.
		span := trace.SpanFromContext(r.Context())
		span.SetName(name)
		span.SetAttributes(semconv.HTTPRoute(route))
		if err := fn(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// writeError is the one place that maps an error to a status code, a problem
// body and, for server errors, a log record.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	e := &problem.Error{Status: http.StatusInternalServerError, Detail: "internal server error", Err: err}
	var (
		ve *domain.ValidationError
		ue *app.UnavailableError
	)
	switch {
	case errors.As(err, &e):
	case errors.As(err, &ue):
		e = &problem.Error{Status: http.StatusServiceUnavailable, Detail: "orders are temporarily unavailable; retry later", Err: err}
		if ue.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(ue.RetryAfter.Seconds())), 10))
		}
	case errors.As(err, &ve):
		e = &problem.Error{Status: http.StatusBadRequest, Detail: ve.Error(), Err: err}
	case errors.Is(err, domain.ErrNotFound):
		e = &problem.Error{Status: http.StatusNotFound, Detail: "order not found", Err: err}
		if id := r.PathValue("id"); id != "" {
			e.Detail = fmt.Sprintf("order %q not found", id)
		}
	case errors.Is(err, domain.ErrAlreadyExists):
		e = &problem.Error{Status: http.StatusConflict, Detail: "order already exists", Err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		e = &problem.Error{Status: http.StatusServiceUnavailable, Detail: "request timed out", Err: err}
	case ctx.Err() != nil:
		// The client went away, so whatever failed (the store may report an
		// interrupted query rather than context.Canceled) is no server fault,
		// and nobody will read the answer.
		e = &problem.Error{Status: http.StatusServiceUnavailable, Detail: "request canceled", Err: err}
		a.log.DebugContext(ctx, "request canceled",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Any("error", err))
	}
	if e.Status >= 500 && ctx.Err() == nil {
		problem.Log(a.log, slog.LevelDebug, r, e, err)
	}
	problem.Write(w, r, e)
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the status is sent; a write error means the client left
	return nil
}

// decodeJSON decodes the request body, a single JSON object of at most
// MaxBodyBytes with no unknown fields, into dst. Its errors are *Error with a
// detail naming the problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &problem.Error{Status: http.StatusUnsupportedMediaType, Detail: fmt.Sprintf("Content-Type %q is not application/json", ct)}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return &problem.Error{Status: http.StatusBadRequest, Detail: "request body must contain a single JSON object"}
	}
	return nil
}

// decodeError turns a JSON decoding error into an *Error naming the problem.
func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return &problem.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)}
	case errors.As(err, &syn):
		return &problem.Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &problem.Error{Status: http.StatusBadRequest, Detail: "malformed JSON: body ends unexpectedly"}
	case errors.Is(err, io.EOF):
		return &problem.Error{Status: http.StatusBadRequest, Detail: "request body is empty; want a JSON object"}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &problem.Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf("request body is a JSON %s, want a JSON object", typ.Value)}
		}
		return &problem.Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf("field %q: want %s, got JSON %s", field, typ.Type, typ.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &problem.Error{Status: http.StatusBadRequest, Detail: "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
	default:
		return &problem.Error{Status: http.StatusBadRequest, Detail: "cannot read request body", Err: err}
	}
}

func (a *api) placeOrder(w http.ResponseWriter, r *http.Request) error {
	var req PlaceOrderRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	cmd := app.PlaceOrder{CustomerID: req.CustomerID, Lines: make([]domain.Line, len(req.Lines))}
	for i, l := range req.Lines {
		cmd.Lines[i] = domain.Line{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice}
	}
	cmd.PaymentMethod = req.PaymentMethod
	if a := req.ShipTo; a != nil {
		cmd.ShipTo = domain.Address{Recipient: a.Recipient, Lines: a.Lines, Locality: a.Locality, PostalCode: a.PostalCode, RegionCode: a.RegionCode}
	}
	o, err := a.svc.PlaceOrder(r.Context(), cmd)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/orders/"+url.PathEscape(o.ID))
	return writeJSON(w, http.StatusCreated, toWire(o))
}

func (a *api) getOrder(w http.ResponseWriter, r *http.Request) error {
	o, err := a.svc.GetOrder(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWire(o))
}

func (a *api) listOrders(w http.ResponseWriter, r *http.Request) error {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return &problem.Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf("query parameter limit %q is not a positive integer", s)}
		}
		limit = n
	}
	orders, err := a.svc.ListOrders(r.Context(), limit)
	if err != nil {
		return err
	}
	out := OrderList{Orders: make([]Order, len(orders))}
	for i, o := range orders {
		out.Orders[i] = toWire(o)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
	return nil
}

// toWire converts a domain order to its wire form.
func toWire(o domain.Order) Order {
	out := Order{
		ID: o.ID, CustomerID: o.CustomerID, Status: o.Status.String(),
		Lines: make([]Line, len(o.Lines)), Total: o.Total, CreatedAt: o.CreatedAt.UTC(),
		UpdatedAt: o.UpdatedAt.UTC(), StatusReason: o.StatusReason, SagaID: o.SagaID,
	}
	for i, l := range o.Lines {
		out.Lines[i] = Line{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice}
	}
	return out
}
