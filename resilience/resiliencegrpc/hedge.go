package resiliencegrpc

import (
	"context"
	"errors"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/resilience/hedge"
)

// DefaultNonFatalCodes are the status codes after which hedging goes on
// when HedgeConfig.NonFatalCodes is empty: UNAVAILABLE only. (gRPC proposal
// A6 leaves nonFatalStatusCodes empty by default, which makes every code
// fatal; UNAVAILABLE is the code that promises the server did not process
// the call, so another attempt may still succeed.)
var DefaultNonFatalCodes = []codes.Code{codes.Unavailable}

// HedgeConfig configures [UnaryClientHedgeInterceptor]. The zero
// HedgeConfig hedges no method.
type HedgeConfig struct {
	// Hedgeable reports whether calls of a method, named in full as
	// "/package.Service/Method", may be hedged. Only idempotent methods
	// should be: every hedged attempt may reach the server. [Methods]
	// makes one from a list of names. Default nil: no method is hedged.
	Hedgeable func(method string) bool
	// NonFatalCodes are the status codes of a failed attempt that let the
	// other attempts go on, as in gRPC proposal A6; an attempt that fails
	// with any other code ends the call at once with its error, cancelling
	// the others. Default [DefaultNonFatalCodes] (UNAVAILABLE).
	NonFatalCodes []codes.Code
}

// Methods returns a HedgeConfig.Hedgeable that accepts the methods named,
// in full, as "/package.Service/Method".
func Methods(methods ...string) func(method string) bool {
	set := make(map[string]struct{}, len(methods))
	for _, m := range methods {
		set[m] = struct{}{}
	}
	return func(method string) bool {
		_, ok := set[method]
		return ok
	}
}

// UnaryClientHedgeInterceptor returns an interceptor that sends hedged
// attempts of the unary calls of the methods cfg.Hedgeable accepts, with
// hedge.Do and h: when an attempt has not answered after h.Delay(), another
// is sent, and the first successful attempt wins; the others are cancelled,
// so the server sees their contexts end. Other calls, and all calls when h
// is nil, go straight to the invoker.
//
// Each attempt unmarshals into its own new message of the reply's type;
// the winner's is copied into the caller's reply (proto.Reset, then
// proto.Merge), so the reply never holds a mixture of attempts. Replies
// must therefore be proto messages; a call whose reply is not one is not
// hedged. The caller's grpc.Header, grpc.Trailer and grpc.Peer options
// receive the metadata and peer of the attempt whose result the call
// returns; the caller's other call options are passed to every attempt.
//
// An attempt that fails with a code in cfg.NonFatalCodes lets the others
// go on; once every attempt sent has failed so, the call returns the last
// one's error (hedge.Do sends no more hedges after that: hedging is for
// slowness, retries are for failures). An attempt that fails with any other
// code ends the call at once with its error, as gRPC proposal A6 says.
// When the caller's context ends, the call returns its status (CANCELED or
// DEADLINE_EXCEEDED). The interceptor does not read server pushback.
//
// To combine hedging with a pipeline, chain this interceptor before
// [UnaryClientInterceptor] (grpc.WithChainUnaryInterceptor(hedging,
// pipeline)), so that each hedged attempt runs through the pipeline on its
// own. The interceptor is safe for concurrent use.
func UnaryClientHedgeInterceptor(h *hedge.Hedger, cfg HedgeConfig) grpc.UnaryClientInterceptor {
	nonFatal := newCodeSet(cfg.NonFatalCodes, DefaultNonFatalCodes)
	hedgeable := cfg.Hedgeable
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		rm, ok := reply.(proto.Message)
		if h == nil || hedgeable == nil || !ok || !hedgeable(method) {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		c := &hedgedCall{}
		opts = c.split(opts)

		hctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			mu          sync.Mutex
			fatal, last *attempt
		)
		win, err := hedge.Do(hctx, h, func(actx context.Context) (*attempt, error) {
			a := &attempt{reply: rm.ProtoReflect().New().Interface()}
			a.err = invoker(actx, method, req, a.reply, cc, append(slices.Clip(opts), grpc.Header(&a.header), grpc.Trailer(&a.trailer), grpc.Peer(&a.peer))...)
			if a.err == nil {
				return a, nil
			}
			mu.Lock()
			last = a
			isFatal := fatal == nil && !nonFatal.has(codeOf(a.err)) && hctx.Err() == nil
			if isFatal {
				fatal = a
			}
			mu.Unlock()
			if isFatal {
				cancel() // ends the call and the other attempts
			}
			return nil, a.err
		})
		if err == nil {
			proto.Reset(rm)
			proto.Merge(rm, win.reply)
			c.deliver(win)
			return nil
		}
		mu.Lock()
		a := fatal
		if a == nil {
			var he *hedge.Error
			if errors.As(err, &he) && he.Cause != nil {
				mu.Unlock()
				return status.FromContextError(he.Cause).Err()
			}
			a = last
		}
		mu.Unlock()
		if a == nil {
			return err
		}
		c.deliver(a)
		return a.err
	}
}

// attempt is one hedged attempt of a call.
type attempt struct {
	reply           proto.Message
	header, trailer metadata.MD
	peer            peer.Peer
	err             error
}

// hedgedCall holds the caller's call options that attempts may not share.
type hedgedCall struct {
	headers, trailers []*metadata.MD
	peers             []*peer.Peer
}

// split removes from opts, and keeps, the options that receive an
// attempt's metadata or peer, which concurrent attempts would write at
// once.
func (c *hedgedCall) split(opts []grpc.CallOption) []grpc.CallOption {
	out := make([]grpc.CallOption, 0, len(opts)+3)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			c.headers = append(c.headers, o.HeaderAddr)
		case grpc.TrailerCallOption:
			c.trailers = append(c.trailers, o.TrailerAddr)
		case grpc.PeerCallOption:
			c.peers = append(c.peers, o.PeerAddr)
		default:
			out = append(out, o)
		}
	}
	return out
}

// deliver gives the caller a's metadata and peer.
func (c *hedgedCall) deliver(a *attempt) {
	for _, h := range c.headers {
		*h = a.header
	}
	for _, t := range c.trailers {
		*t = a.trailer
	}
	for _, p := range c.peers {
		*p = a.peer
	}
}
