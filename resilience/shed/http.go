package shed

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// WriteHTTP answers a shed request: if err is or wraps a [*ShedError], it
// writes 503 Service Unavailable with a Retry-After header of the error's
// RetryAfter in whole seconds, rounded up and at least 1, and returns
// true. For any other error, including nil, it writes nothing and returns
// false.
func WriteHTTP(w http.ResponseWriter, err error) bool {
	var se *ShedError
	if !errors.As(err, &se) {
		return false
	}
	w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(se.RetryAfter), 10))
	http.Error(w, ErrShed.Error(), http.StatusServiceUnavailable)
	return true
}

// retryAfterSeconds returns d in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(1, s)
}
