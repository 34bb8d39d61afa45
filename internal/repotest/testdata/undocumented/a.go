// Package undocumented has exported names without docs.
package undocumented

const Bare = 1

// Wrong is documented, but not with its name first.
func Fn() {}
