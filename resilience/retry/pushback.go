package retry

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PushbackKey is the gRPC trailer key by which a server tells the client
// how long to wait before retrying, in milliseconds (gRPC proposal A6).
const PushbackKey = "grpc-retry-pushback-ms"

// RetryAfter parses the Retry-After header of h (RFC 9110, section 10.2.3):
// either delay-seconds or an HTTP-date, taken relative to now. It reports
// ok = false when the header is missing or invalid. A negative number of
// seconds or a date before now yields 0; a delay too long for a
// time.Duration yields the largest one.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if c := v[0]; c == '-' || c == '+' || (c >= '0' && c <= '9') {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				if v[0] == '-' {
					return 0, true
				}
				return maxDuration, true
			}
			// Not a number; maybe a date that starts with a digit.
		} else {
			switch {
			case secs <= 0:
				return 0, true
			case secs > int64(maxDuration/time.Second):
				return maxDuration, true
			}
			return time.Duration(secs) * time.Second, true
		}
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Pushback interprets the values of the grpc-retry-pushback-ms trailer
// ([PushbackKey]) as gRPC proposal A6 and grpc-go do. With no value it
// returns present = false and retry = true: the client's own backoff
// applies. A single non-negative integer asks the client to retry after
// that many milliseconds instead (capped at the largest time.Duration). A
// negative or non-integer value, or more than one value, means the server
// asks the client not to retry.
func Pushback(values []string) (d time.Duration, retry bool, present bool) {
	switch len(values) {
	case 0:
		return 0, true, false
	case 1:
	default:
		return 0, false, true
	}
	ms, err := strconv.ParseInt(values[0], 10, 64)
	if err != nil || ms < 0 {
		return 0, false, true
	}
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return maxDuration, true, true
	}
	return time.Duration(ms) * time.Millisecond, true, true
}
