//go:build !race

package e2e

// raceEnabled says the tests run under the race detector, which makes the
// embedded FerretDB several times slower: the MongoDB tests then use less data.
const raceEnabled = false
