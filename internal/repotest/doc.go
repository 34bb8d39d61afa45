// Package repotest holds tests that check the repository as a whole rather
// than one package: that every package says what it is for in a package doc
// comment, and that every package with tests verifies in its TestMain that
// the tests leak no goroutines. It has no API.
package repotest
