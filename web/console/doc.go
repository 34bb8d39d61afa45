// Package console holds the static assets of the cairn observability
// console: the html/template page templates and the stylesheet. They are
// embedded into the binary with go:embed so the console needs no files on
// disk and no network access at run time.
//
// The package only carries data; the handlers that parse the templates and
// serve the assets live in [github.com/cairnhq/cairn/console]. It lives in a
// separate package because go:embed cannot reach files outside the embedding
// package's directory.
package console

import "embed"

// FS holds the console's assets: templates/*.html (html/template sources,
// parsed together so they may call one another's named templates) and
// static/* (served verbatim under /static/). FS is read-only and safe for
// concurrent use.
//
//go:embed static templates
var FS embed.FS
