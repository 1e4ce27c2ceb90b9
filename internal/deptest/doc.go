// Package deptest holds nimbus's negative dependency test: the packages
// each part of nimbus must never import, directly or through others, each
// with its reason. It has no code of its own; run it with
// `go test ./internal/deptest/`.
package deptest
