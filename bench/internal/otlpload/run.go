package otlpload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Config describes a load run. Zero fields take the defaults noted.
type Config struct {
	Target        string        // receiver host:port; required
	Protocol      string        // "grpc" or "http"; required
	Senders       int           // concurrent senders, each with its own connection; default 4
	Batch         int           // spans per export; default 512
	SpansPerTrace int           // default 8
	Duration      time.Duration // measured time after Warmup; default 15s
	Warmup        time.Duration // unmeasured time first; zero: none
	// Rate is the offered load in spans/s over all senders; zero sends the
	// next export as soon as the previous one is answered.
	Rate float64
	// HonorRetryAfter makes a sender wait RetryWait after a refusal, as an
	// OTLP exporter would; otherwise it sends its next export at once, so
	// that an overload stays an overload.
	HonorRetryAfter bool
	// RetryWait is the wait after a refusal when HonorRetryAfter is set;
	// default one second (what cairn's console asks for).
	RetryWait time.Duration
}

func (c *Config) setDefaults() {
	if c.Senders <= 0 {
		c.Senders = 4
	}
	if c.Batch <= 0 {
		c.Batch = 512
	}
	if c.SpansPerTrace <= 0 {
		c.SpansPerTrace = 8
	}
	if c.Duration <= 0 {
		c.Duration = 15 * time.Second
	}
	if c.RetryWait <= 0 {
		c.RetryWait = time.Second
	}
}

// Result summarises the measured part of a run: exports that started after
// the warm-up and were answered before its end.
type Result struct {
	Duration  time.Duration // measured time
	Spans     int64         // spans accepted
	Exports   int64         // exports accepted (fully or partly)
	Refused   int64         // exports refused with a retryable status
	Hinted    int64         // refusals that carried Retry-After or RetryInfo
	Failed    int64         // exports that failed otherwise
	P50, P99  time.Duration // latency of accepted exports
	Max       time.Duration
	FirstErr  error // first failure or refusal seen, for the report
	SpanBatch int   // spans per export
}

// SpansPerSecond returns the accepted spans per second.
func (r Result) SpansPerSecond() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Spans) / r.Duration.Seconds()
}

// BenchLine formats r as a Go benchmark result line named name, so that
// benchstat can compare runs: ns/span, spans/s, refused exports per second
// and export latency percentiles.
func (r Result) BenchLine(name string) string {
	nsPerSpan := 0.0
	if r.Spans > 0 {
		nsPerSpan = float64(r.Duration.Nanoseconds()) / float64(r.Spans)
	}
	return fmt.Sprintf("%s 1 %.1f ns/span %.0f spans/s %.1f refused/s %.3f p50-ms %.3f p99-ms",
		name, nsPerSpan, r.SpansPerSecond(), float64(r.Refused)/r.Duration.Seconds(),
		ms(r.P50), ms(r.P99))
}

// Summary formats r for people.
func (r Result) Summary() string {
	s := fmt.Sprintf("accepted %d spans in %d exports over %s: %.0f spans/s; export latency p50 %s p99 %s max %s; refused %d (%d with Retry-After/RetryInfo); failed %d",
		r.Spans, r.Exports, r.Duration, r.SpansPerSecond(), r.P50, r.P99, r.Max, r.Refused, r.Hinted, r.Failed)
	if r.FirstErr != nil {
		s += fmt.Sprintf("; first error: %v", r.FirstErr)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// senderStats is what one sender saw in the measured window.
type senderStats struct {
	spans, exports, refused, hinted, failed int64
	lat                                     []time.Duration
	firstErr                                error
}

// Run sends load as cfg describes until its warm-up and duration have
// passed or ctx is done, and returns what was measured. It fails only for
// a bad Config; refusals and failed exports are counted in the Result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	if cfg.Target == "" {
		return Result{}, errors.New("otlpload: no target")
	}
	clients := make([]Client, cfg.Senders)
	for i := range clients {
		c, err := NewClient(cfg.Protocol, cfg.Target)
		if err != nil {
			return Result{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	wires := make([]*Wire, cfg.Senders)
	for i := range wires {
		w, err := NewWire(i, cfg.Batch, cfg.SpansPerTrace)
		if err != nil {
			return Result{}, err
		}
		wires[i] = w
	}
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(10*time.Second))
	defer cancel()

	var interval time.Duration // between one sender's exports; zero: unpaced
	if cfg.Rate > 0 {
		perSender := cfg.Rate / float64(cfg.Senders)
		interval = time.Duration(float64(wires[0].Spans()) / perSender * float64(time.Second))
	}

	stats := make([]senderStats, cfg.Senders)
	var wg sync.WaitGroup
	for i := range cfg.Senders {
		wg.Go(func() {
			st := &stats[i]
			wire := wires[i]
			// Stagger paced senders over one interval.
			next := start.Add(interval * time.Duration(i) / time.Duration(cfg.Senders))
			for ctx.Err() == nil {
				if interval > 0 {
					if !sleepUntil(ctx, next) {
						return
					}
					next = next.Add(interval)
				}
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				out := clients[i].ExportRaw(ctx, wire.Next(t0), wire.Spans())
				t1 := time.Now()
				measured := !t0.Before(measureFrom) && t1.Before(end)
				if measured {
					st.add(out, t1.Sub(t0))
				}
				if out.Refused && cfg.HonorRetryAfter && !sleepUntil(ctx, t1.Add(cfg.RetryWait)) {
					return
				}
			}
		})
	}
	wg.Wait()

	res := Result{Duration: cfg.Duration, SpanBatch: cfg.Batch}
	var lat []time.Duration
	for _, st := range stats {
		res.Spans += st.spans
		res.Exports += st.exports
		res.Refused += st.refused
		res.Hinted += st.hinted
		res.Failed += st.failed
		lat = append(lat, st.lat...)
		if res.FirstErr == nil {
			res.FirstErr = st.firstErr
		}
	}
	res.P50, res.P99, res.Max = Percentiles(lat)
	return res, nil
}

// add records one measured export.
func (st *senderStats) add(out Outcome, lat time.Duration) {
	switch {
	case out.Refused:
		st.refused++
		if out.RetryHint {
			st.hinted++
		}
	case out.Err != nil:
		st.failed++
	default:
		st.spans += int64(out.Accepted)
		st.exports++
		st.lat = append(st.lat, lat)
	}
	if out.Err != nil && st.firstErr == nil {
		st.firstErr = out.Err
	}
}

// Percentiles returns the 50th and 99th percentiles and the maximum of d,
// which it sorts; all are zero for an empty d.
func Percentiles(d []time.Duration) (p50, p99, maximum time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return at(0.50), at(0.99), d[len(d)-1]
}

// sleepUntil waits until t or until ctx is done, and reports whether t
// was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
