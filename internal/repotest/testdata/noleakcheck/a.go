// Package noleakcheck has tests without a goleak TestMain.
package noleakcheck
