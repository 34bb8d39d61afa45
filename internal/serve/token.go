package serve

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
)

// tokenCookie carries the console's token once a browser has presented it
// in the URL.
const tokenCookie = "cairn_console_token"

// newToken returns 128 random bits as 32 hex digits.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isLoopback reports whether addr (host:port) binds to loopback only. An
// empty host ("":7070) binds every interface, so it is not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// requireToken lets a request through next only if it presents token: as
// "Authorization: Bearer <token>", as the cookie a browser got, or as
// "?token=<token>" in the URL, which sets the cookie and redirects to the
// URL without it (so the token does not stay in the address bar and the
// history). Anything else is answered 401.
func requireToken(token string, next http.Handler) http.Handler {
	ok := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(token)) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && ok(auth) {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(tokenCookie); err == nil && ok(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		if q := r.URL.Query(); q.Has("token") && ok(q.Get("token")) {
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn console"`)
		http.Error(w, "cairn console: this address needs the console's token: open the URL with ?token=<token>, or send Authorization: Bearer <token>", http.StatusUnauthorized)
	})
}
