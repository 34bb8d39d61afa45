package redisratelimit_test

import (
	"context"
	"fmt"
	"time"

	redisratelimit "github.com/cairnhq/cairn/resilience/ratelimit/redis"
	"github.com/redis/go-redis/v9"
)

// Example limits each user to 100 requests a minute across every replica
// that shares the Redis. It needs a Redis, so it is compiled but not run;
// TestExampleUsage runs the same code.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	limiter, err := redisratelimit.New(client, redisratelimit.Config{
		Name:   "api",
		Rate:   100,
		Per:    time.Minute,
		Outage: redisratelimit.OutageLocal,
	})
	if err != nil {
		panic(err)
	}
	d, err := limiter.AllowN(context.Background(), "user:42", 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Allowed, d.Remaining)
}
