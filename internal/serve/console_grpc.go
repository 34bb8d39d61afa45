package serve

import (
	"context"
	"crypto/subtle"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/console"
)

// serveGRPC serves the console's OTLP/gRPC receiver on ln, asking for the
// token when requireToken is set, and returns a function that stops it
// (gracefully, within 5 seconds). Serve's error goes to errc.
func serveGRPC(c *console.Console, ln net.Listener, token string, requireToken bool, errc chan<- error) (func(), error) {
	var opts []grpc.ServerOption
	if token != "" && requireToken {
		want := []byte("Bearer " + token)
		opts = append(opts, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			for _, v := range md.Get("authorization") {
				if subtle.ConstantTimeCompare([]byte(v), want) == 1 {
					return h(ctx, req)
				}
			}
			return nil, status.Error(codes.Unauthenticated, "cairn console: this receiver needs the console's token, as the metadata authorization: Bearer <token>")
		}))
	}
	s := c.NewGRPCServer(opts...)
	go func() { errc <- s.Serve(ln) }()
	return func() {
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.Stop()
			<-done
		}
	}, nil
}
