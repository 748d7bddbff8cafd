//go:build !unix

package store

import "errors"

// freeSpace cannot measure here: the store keeps no reserve.
func freeSpace(string) (int64, error) { return 0, errors.New("not measured on this system") }
