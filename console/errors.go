package console

import "net/http"

// handlerFunc is an HTTP handler that reports failure by returning an
// error, classified by problem.From, instead of writing a response. It must
// not write anything when it returns an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error
