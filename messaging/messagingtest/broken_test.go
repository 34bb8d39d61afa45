package messagingtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
	"github.com/cairnhq/cairn/messaging/messagingtest"
)

// harness returns a harness of an inproc broker whose publishers and
// subscribers are changed by wrapPub and wrapSub, when not nil.
func harness(wrapPub func(messaging.Publisher) messaging.Publisher, wrapSub func(messaging.Subscriber) messaging.Subscriber) messagingtest.Harness {
	if wrapPub == nil {
		wrapPub = func(p messaging.Publisher) messaging.Publisher { return p }
	}
	if wrapSub == nil {
		wrapSub = func(s messaging.Subscriber) messaging.Subscriber { return s }
	}
	b := inproc.NewBroker()
	var n atomic.Int64
	return messagingtest.Harness{
		NewPublisher: func(*testing.T) messaging.Publisher {
			return wrapPub(inproc.NewPublisher(b, inproc.Options{}))
		},
		NewSubscriber: func(*testing.T) messaging.Subscriber {
			return wrapSub(inproc.NewSubscriber(b, inproc.Options{}))
		},
		Subject:        func(*testing.T) string { return fmt.Sprintf("s%d", n.Add(1)) },
		MaxMessageSize: b.MaxMessageSize(),
		NewPublisherWithTracer: func(_ *testing.T, tp trace.TracerProvider) messaging.Publisher {
			return wrapPub(inproc.NewPublisher(b, inproc.Options{TracerProvider: tp}))
		},
		NewSubscriberWithTracer: func(_ *testing.T, tp trace.TracerProvider) messaging.Subscriber {
			return wrapSub(inproc.NewSubscriber(b, inproc.Options{TracerProvider: tp}))
		},
	}
}

// pubFunc is a publisher whose Publish is a function of the real one.
type pubFunc struct {
	messaging.Publisher
	publish func(ctx context.Context, msgs ...messaging.Message) error
}

func (p pubFunc) Publish(ctx context.Context, msgs ...messaging.Message) error {
	return p.publish(ctx, msgs...)
}

// mapMessages publishes every message changed by fn.
func mapMessages(fn func(messaging.Message) messaging.Message) func(messaging.Publisher) messaging.Publisher {
	return func(p messaging.Publisher) messaging.Publisher {
		return pubFunc{p, func(ctx context.Context, msgs ...messaging.Message) error {
			out := make([]messaging.Message, len(msgs))
			for i, m := range msgs {
				out[i] = fn(m)
			}
			return p.Publish(ctx, out...)
		}}
	}
}

// subFunc is a subscriber whose Subscribe is a function of the real one.
type subFunc struct {
	messaging.Subscriber
	subscribe func(ctx context.Context, cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.Subscription, error)
}

func (s subFunc) Subscribe(ctx context.Context, cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.Subscription, error) {
	return s.subscribe(ctx, cfg, h)
}

// wrapSubscribe subscribes with the configuration and handler changed by
// fn.
func wrapSubscribe(fn func(messaging.SubscribeConfig, messaging.Handler) (messaging.SubscribeConfig, messaging.Handler)) func(messaging.Subscriber) messaging.Subscriber {
	return func(s messaging.Subscriber) messaging.Subscriber {
		return subFunc{s, func(ctx context.Context, cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.Subscription, error) {
			cfg, h = fn(cfg, h)
			return s.Subscribe(ctx, cfg, h)
		}}
	}
}

var groupN atomic.Int64

// broken lists transports that break one rule each, and the check that
// must catch it.
var broken = map[string]struct {
	check string
	h     func() messagingtest.Harness
}{
	"DropsHeaders": {"RoundTrip", func() messagingtest.Harness {
		return harness(mapMessages(func(m messaging.Message) messaging.Message { m.Header = nil; return m }), nil)
	}},
	"DropsKey": {"RoundTrip", func() messagingtest.Harness {
		return harness(mapMessages(func(m messaging.Message) messaging.Message { m.Key = ""; return m }), nil)
	}},
	"DropsTraceContext": {"TraceContext", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			return cfg, func(ctx context.Context, d messaging.Delivery) error {
				return h(trace.ContextWithSpanContext(ctx, trace.SpanContext{}), d)
			}
		}))
	}},
	"ReordersKeys": {"KeyOrdering", func() messagingtest.Harness {
		return harness(mapMessages(func(m messaging.Message) messaging.Message { m.Key = m.ID; return m }), wrapSubscribe(
			func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
				// Each message is published under a key of its
				// own, given its key back on delivery, and odd
				// messages fail once: they come after the even.
				return cfg, func(ctx context.Context, d messaging.Delivery) error {
					if d.Attempt == 1 && len(d.Data) > 0 && (d.Data[len(d.Data)-1]-'0')%2 == 1 {
						return errors.New("later")
					}
					d.Key = "key-" + strings.Split(strings.TrimPrefix(d.ID[strings.Index(d.ID, "-")+1:], "k"), "-")[0]
					return h(ctx, d)
				}
			}))
	}},
	"RetriesAfterNext": {"OrderingAcrossRedelivery", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			// Acknowledges a failed message and retries it itself,
			// after the next message. Each subscription has one
			// delivering goroutine, so retry needs no lock.
			var retry []messaging.Delivery
			return cfg, func(ctx context.Context, d messaging.Delivery) error {
				err := h(ctx, d)
				for len(retry) > 0 {
					r := retry[0]
					retry = retry[1:]
					if e := h(ctx, r); e != nil && r.Attempt < cfg.MaxDeliveries {
						r.Attempt++
						retry = append(retry, r)
					}
				}
				if err != nil && !messaging.IsPermanent(err) {
					d.Attempt++
					retry = append(retry, d)
					return nil
				}
				return err
			}
		}))
	}},
	"NoRedelivery": {"Redelivery", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			return cfg, func(ctx context.Context, d messaging.Delivery) error { _ = h(ctx, d); return nil }
		}))
	}},
	"OneDeliveryTooMany": {"DeadLetterAfterMaxDeliveries", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			cfg.MaxDeliveries++
			return cfg, h
		}))
	}},
	"PermanentRetried": {"DeadLetterPermanent", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			return cfg, func(ctx context.Context, d messaging.Delivery) error {
				if err := h(ctx, d); err != nil {
					return errors.New(err.Error())
				}
				return nil
			}
		}))
	}},
	"OneGroupPerMember": {"Groups", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			cfg.Group += fmt.Sprint(groupN.Add(1))
			return cfg, h
		}))
	}},
	"AcksOnCrash": {"AtLeastOnceAfterCrash", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			return cfg, func(ctx context.Context, d messaging.Delivery) error { _ = h(ctx, d); return nil }
		}))
	}},
	"SendsPrefixOfInvalidCall": {"InvalidMessage", func() messagingtest.Harness {
		return harness(func(p messaging.Publisher) messaging.Publisher {
			return pubFunc{p, func(ctx context.Context, msgs ...messaging.Message) error {
				for _, m := range msgs {
					if err := p.Publish(ctx, m); err != nil {
						return err
					}
				}
				return nil
			}}
		}, nil)
	}},
	"AcceptsBadConfig": {"InvalidConfig", func() messagingtest.Harness {
		return harness(nil, wrapSubscribe(func(cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.SubscribeConfig, messaging.Handler) {
			if cfg.Subject == "" {
				cfg.Subject = "default"
			}
			if cfg.Group == "" {
				cfg.Group = "default"
			}
			return cfg, h
		}))
	}},
	"OpenAfterClose": {"Closed", func() messagingtest.Harness {
		return harness(func(p messaging.Publisher) messaging.Publisher {
			return pubFunc{p, func(ctx context.Context, msgs ...messaging.Message) error { return nil }}
		}, nil)
	}},
	"LeaksGoroutine": {"NoGoroutineLeak", func() messagingtest.Harness {
		return harness(nil, func(s messaging.Subscriber) messaging.Subscriber {
			return subFunc{s, func(ctx context.Context, cfg messaging.SubscribeConfig, h messaging.Handler) (messaging.Subscription, error) {
				go func() { select {} }()
				return s.Subscribe(ctx, cfg, h)
			}}
		})
	}},
}

const brokenEnv = "MESSAGINGTEST_BROKEN"

// TestBrokenTransports proves that the checks can fail: it runs each
// check against a transport broken for it, in a child process, and wants
// the child to fail.
func TestBrokenTransports(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in a child process")
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for name, c := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("check %s passed against a transport that %s; output:\n%s", c.check, name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenChild") {
				t.Fatalf("check %s against %s: child failed without a test failure (%v); output:\n%s", c.check, name, err, out)
			}
		})
	}
}

// TestBrokenChild runs one check against a broken transport; only
// TestBrokenTransports runs it.
func TestBrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestBrokenTransports")
	}
	c, ok := broken[name]
	if !ok {
		t.Fatalf("no broken transport %q", name)
	}
	for _, check := range messagingtest.Checks() {
		if check.Name == c.check {
			check.Run(t, c.h())
			return
		}
	}
	t.Fatalf("no check %q", c.check)
}
