package ratelimit

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
)

// FuzzTokenBucket feeds random sequences of (time step, n) to a token
// bucket and checks its invariants: over every prefix no more than
// Burst + elapsed/T events are admitted; a denied request that fits the
// burst succeeds exactly after RetryAfter and not a nanosecond earlier;
// Remaining is exactly what a following request can take.
func FuzzTokenBucket(f *testing.F) {
	f.Add(uint16(100), uint8(3), []byte{0, 1, 0, 1, 0, 1, 0, 1, 8, 1, 4, 2, 200, 3})
	f.Add(uint16(1), uint8(1), []byte{1, 1, 1, 1, 0, 2, 255, 0})
	f.Add(uint16(9999), uint8(19), []byte{3, 19, 3, 20, 17, 5})
	f.Fuzz(func(t *testing.T, intervalRaw uint16, burstRaw uint8, data []byte) {
		interval := (time.Duration(intervalRaw)%10000 + 1) * time.Microsecond
		burst := int(burstRaw)%20 + 1
		cfg := Config{Rate: 1, Per: interval, Burst: burst, MeterProvider: noop.NewMeterProvider()}
		b, err := NewTokenBucket(cfg)
		if err != nil {
			t.Fatal(err)
		}
		clone := func() *TokenBucket {
			c := &TokenBucket{name: b.name, clock: b.clock, rec: b.rec}
			c.g.interval, c.g.limit, c.g.burst = b.g.interval, b.g.limit, b.g.burst
			c.g.tat.Store(b.g.tat.Load())
			return c
		}
		now := t0
		var admitted int64
		for i := 0; i+1 < len(data); i += 2 {
			now = now.Add(time.Duration(data[i]) * interval / 8)
			n := int(data[i+1]) % (burst + 2)
			d := b.AllowN(now, n)
			elapsed := now.Sub(t0)
			switch {
			case d.Allowed:
				admitted += int64(max(n, 0))
				if d.RetryAfter != 0 || d.Delay != 0 {
					t.Fatalf("AllowN(%v, %d) = %+v: allowed with RetryAfter or Delay", elapsed, n, d)
				}
			case n > burst:
				if d.RetryAfter != Never {
					t.Fatalf("AllowN(%v, %d) = %+v, want RetryAfter Never", elapsed, n, d)
				}
			default:
				if d.RetryAfter <= 0 {
					t.Fatalf("AllowN(%v, %d) = %+v, want RetryAfter > 0", elapsed, n, d)
				}
				if got := clone().AllowN(now.Add(d.RetryAfter-1), n); got.Allowed {
					t.Fatalf("AllowN(%v, %d) after RetryAfter-1ns = %+v, want denied", elapsed, n, got)
				}
				if got := clone().AllowN(now.Add(d.RetryAfter), n); !got.Allowed {
					t.Fatalf("AllowN(%v, %d) after RetryAfter %v = %+v, want allowed", elapsed, n, d.RetryAfter, got)
				}
			}
			if limit := int64(burst) + int64(elapsed/interval); admitted > limit {
				t.Fatalf("admitted %d events in %v, more than burst %d + %v/%v", admitted, elapsed, burst, elapsed, interval)
			}
			if d.Remaining < 0 || d.Remaining > burst || d.Reset < 0 || d.Reset > time.Duration(burst)*interval {
				t.Fatalf("AllowN(%v, %d) = %+v: Remaining or Reset out of range", elapsed, n, d)
			}
			if got, want := clone().g.takeOne(b.clock.nanos(now)), clone().AllowN(now, 1).Allowed; got != want {
				t.Fatalf("at %v takeOne = %v, AllowN(1).Allowed = %v", elapsed, got, want)
			}
			if d.Remaining > 0 && !clone().AllowN(now, d.Remaining).Allowed {
				t.Fatalf("AllowN(%v, %d) = %+v, but Remaining events are denied", elapsed, n, d)
			}
			if d.Remaining < burst && clone().AllowN(now, d.Remaining+1).Allowed {
				t.Fatalf("AllowN(%v, %d) = %+v, but Remaining+1 events are allowed", elapsed, n, d)
			}
		}
	})
}
