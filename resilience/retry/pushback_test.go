package retry

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2015, time.October, 21, 7, 28, 0, 0, time.UTC)
	tests := []struct {
		name   string
		values []string
		want   time.Duration
		ok     bool
	}{
		{"missing", nil, 0, false},
		{"empty", []string{""}, 0, false},
		{"seconds", []string{"120"}, 120 * time.Second, true},
		{"zero", []string{"0"}, 0, true},
		{"spaces", []string{" 5 "}, 5 * time.Second, true},
		{"negative", []string{"-5"}, 0, true},
		{"huge", []string{"99999999999999999999999"}, maxDuration, true},
		{"huge negative", []string{"-99999999999999999999999"}, 0, true},
		{"too many seconds for a duration", []string{"9300000000"}, maxDuration, true},
		{"fraction", []string{"1.5"}, 0, false},
		{"garbage", []string{"soon"}, 0, false},
		{"digits then garbage", []string{"12abc"}, 0, false},
		{"IMF-fixdate", []string{"Wed, 21 Oct 2015 07:28:30 GMT"}, 30 * time.Second, true},
		{"RFC 850", []string{"Wednesday, 21-Oct-15 07:29:00 GMT"}, time.Minute, true},
		{"asctime", []string{"Wed Oct 21 07:28:05 2015"}, 5 * time.Second, true},
		{"past date", []string{"Wed, 21 Oct 2015 07:00:00 GMT"}, 0, true},
		{"bad date", []string{"Wed, 32 Oct 2015 07:28:30 GMT"}, 0, false},
		{"first of several", []string{"3", "7"}, 3 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Retry-After", v)
			}
			d, ok := RetryAfter(h, now)
			if d != tt.want || ok != tt.ok {
				t.Fatalf("RetryAfter(%q) = %v, %v; want %v, %v", tt.values, d, ok, tt.want, tt.ok)
			}
		})
	}
	if d, ok := RetryAfter(nil, now); d != 0 || ok {
		t.Fatalf("RetryAfter(nil) = %v, %v", d, ok)
	}
}

func TestPushback(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		d       time.Duration
		retry   bool
		present bool
	}{
		{"absent", nil, 0, true, false},
		{"zero", []string{"0"}, 0, true, true},
		{"ms", []string{"1500"}, 1500 * time.Millisecond, true, true},
		{"negative", []string{"-1"}, 0, false, true},
		{"not integer", []string{"1.5"}, 0, false, true},
		{"empty", []string{""}, 0, false, true},
		{"garbage", []string{"later"}, 0, false, true},
		{"overflow", []string{"99999999999999999999"}, 0, false, true},
		{"too long for a duration", []string{"9223372036854775"}, maxDuration, true, true},
		{"several", []string{"10", "20"}, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, retry, present := Pushback(tt.values)
			if d != tt.d || retry != tt.retry || present != tt.present {
				t.Fatalf("Pushback(%q) = %v, %v, %v; want %v, %v, %v", tt.values, d, retry, present, tt.d, tt.retry, tt.present)
			}
		})
	}
}
