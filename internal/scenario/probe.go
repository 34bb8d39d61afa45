package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxList is the largest page the console's list endpoints return, so
// the most [ConsoleProbe.Logs] and [ConsoleProbe.ErrorTraces] can count.
const maxList = 1000

// maxResponse bounds a response body ConsoleProbe reads.
const maxResponse = 64 << 20

// ConsoleProbe is a [TelemetryProbe] that reads the console's JSON API
// (docs/console.md, "The JSON API") over HTTP: what the console received,
// which is what the shop exported. It is safe for concurrent use and
// holds no resources of its own.
type ConsoleProbe struct {
	base   string
	client *http.Client
	token  string
}

var _ TelemetryProbe = (*ConsoleProbe)(nil)

// NewConsoleProbe returns a probe of the console whose UI and API are
// served at baseURL ("http://127.0.0.1:7070"), sending its requests with
// client (nil means http.DefaultClient) and, when token is not empty, an
// Authorization: Bearer header.
func NewConsoleProbe(baseURL string, client *http.Client, token string) *ConsoleProbe {
	if client == nil {
		client = http.DefaultClient
	}
	return &ConsoleProbe{base: strings.TrimSuffix(baseURL, "/"), client: client, token: token}
}

// errNotFound is what get returns for a 404.
type errNotFound struct{ detail string }

func (e *errNotFound) Error() string { return e.detail }

// get fetches path with query into v. A 404 is an *errNotFound.
func (p *ConsoleProbe) get(ctx context.Context, path string, query url.Values, v any) error {
	u := p.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("scenario: console GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("scenario: console GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("scenario: console GET %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var prob struct {
			Detail string `json:"detail"`
		}
		detail := string(bytes.TrimSpace(body))
		if json.Unmarshal(body, &prob) == nil && prob.Detail != "" {
			detail = prob.Detail
		}
		msg := fmt.Sprintf("scenario: console GET %s: %s: %s", u, resp.Status, detail)
		if resp.StatusCode == http.StatusNotFound {
			return &errNotFound{msg}
		}
		return errors.New(msg)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("scenario: console GET %s: decode: %w", path, err)
	}
	return nil
}

// number decodes a JSON number, or the strings "NaN", "+Inf" and "-Inf"
// the console writes for non-finite values.
type number float64

// UnmarshalJSON accepts a number or a string holding one.
func (n *number) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("scenario: value %q: not a number", s)
		}
		*n = number(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = number(f)
	return nil
}

// seriesResponse is the part of /api/metrics/series the probe reads.
type seriesResponse struct {
	Instrument struct {
		Kind        string `json:"kind"`
		Temporality string `json:"temporality"`
		Monotonic   bool   `json:"monotonic"`
	} `json:"instrument"`
	Series []struct {
		Points []struct {
			Time  time.Time `json:"time"`
			Value number    `json:"value"`
		} `json:"points"`
	} `json:"series"`
}

// services returns the services that report metric, or []string{service}
// when service is set.
func (p *ConsoleProbe) services(ctx context.Context, service, metric string) ([]string, error) {
	if service != "" {
		return []string{service}, nil
	}
	var list struct {
		Metrics []struct {
			Service string `json:"service"`
			Name    string `json:"name"`
		} `json:"metrics"`
	}
	if err := p.get(ctx, "/api/metrics", nil, &list); err != nil {
		return nil, err
	}
	var out []string
	for _, m := range list.Metrics {
		if m.Name == metric {
			out = append(out, m.Service)
		}
	}
	return out, nil
}

// series fetches metric of service restricted to attrs; ok is false when
// the console has no such metric.
func (p *ConsoleProbe) series(ctx context.Context, service, metric string, attrs map[string]string) (seriesResponse, bool, error) {
	q := url.Values{"service": {service}, "name": {metric}}
	for _, k := range sortedKeys(attrs) {
		q.Add("attr", k+"="+attrs[k])
	}
	var res seriesResponse
	err := p.get(ctx, "/api/metrics/series", q, &res)
	if _, nf := errors.AsType[*errNotFound](err); nf {
		return res, false, nil
	}
	return res, err == nil, err
}

// CounterTotal implements [TelemetryProbe.CounterTotal] with
// /api/metrics (to find the services, when service is empty) and
// /api/metrics/series. For a cumulative sum, each series contributes its
// latest value plus, for every point lower than the one before it (a
// reset: the reporting process restarted), the value before the reset.
// For a delta sum, it contributes the sum of its points, so what the
// console evicted is missing. A metric that is not a sum is an error.
// Points whose value is not finite are skipped.
func (p *ConsoleProbe) CounterTotal(ctx context.Context, service, metric string, attrs map[string]string) (float64, error) {
	services, err := p.services(ctx, service, metric)
	if err != nil {
		return 0, err
	}
	var total float64
	for _, svc := range services {
		res, ok, err := p.series(ctx, svc, metric, attrs)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		if res.Instrument.Kind != "sum" {
			return 0, fmt.Errorf("scenario: metric %s of %s is a %s, not a counter (sum)", metric, svc, res.Instrument.Kind)
		}
		for _, s := range res.Series {
			var last float64
			for _, pt := range s.Points {
				v := float64(pt.Value)
				if math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				switch {
				case res.Instrument.Temporality == "delta":
					total += v
				case v < last:
					total += last
				}
				last = v
			}
			if res.Instrument.Temporality != "delta" {
				total += last
			}
		}
	}
	return total, nil
}

// GaugeValue implements [TelemetryProbe.GaugeValue] with /api/metrics and
// /api/metrics/series: the sum over the matching series of each one's
// latest finite value. A metric that is neither a gauge nor a sum is an
// error.
func (p *ConsoleProbe) GaugeValue(ctx context.Context, service, metric string, attrs map[string]string) (float64, error) {
	services, err := p.services(ctx, service, metric)
	if err != nil {
		return 0, err
	}
	var total float64
	for _, svc := range services {
		res, ok, err := p.series(ctx, svc, metric, attrs)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		if k := res.Instrument.Kind; k != "gauge" && k != "sum" {
			return 0, fmt.Errorf("scenario: metric %s of %s is a %s, not a gauge or sum", metric, svc, k)
		}
		for _, s := range res.Series {
			for i := len(s.Points) - 1; i >= 0; i-- {
				if v := float64(s.Points[i].Value); !math.IsNaN(v) && !math.IsInf(v, 0) {
					total += v
					break
				}
			}
		}
	}
	return total, nil
}

// Logs implements [TelemetryProbe.Logs] with /api/logs. It counts up to
// 1000 records, the console's largest page.
func (p *ConsoleProbe) Logs(ctx context.Context, q LogQuery) (int, error) {
	v := url.Values{"limit": {strconv.Itoa(maxList)}}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.MinSeverity != "" {
		v.Set("min_severity", q.MinSeverity)
	}
	if q.Text != "" {
		v.Set("text", q.Text)
	}
	if !q.Since.IsZero() {
		v.Set("from", q.Since.UTC().Format(time.RFC3339Nano))
	}
	var res struct {
		Logs []json.RawMessage `json:"logs"`
	}
	if err := p.get(ctx, "/api/logs", v, &res); err != nil {
		return 0, err
	}
	return len(res.Logs), nil
}

// ErrorTraces implements [TelemetryProbe.ErrorTraces] with
// /api/traces?status=error. It counts up to 1000 traces, the console's
// largest page.
func (p *ConsoleProbe) ErrorTraces(ctx context.Context, service string, since time.Time) (int, error) {
	v := url.Values{"status": {"error"}, "limit": {strconv.Itoa(maxList)}}
	if service != "" {
		v.Set("service", service)
	}
	if !since.IsZero() {
		v.Set("from", since.UTC().Format(time.RFC3339Nano))
	}
	var res struct {
		Traces []json.RawMessage `json:"traces"`
	}
	if err := p.get(ctx, "/api/traces", v, &res); err != nil {
		return 0, err
	}
	return len(res.Traces), nil
}
