// Package chaosapi holds the JSON bodies of the fault simulator's admin
// routes (/v1/admin/chaos…), which exist only on a node started with
// chaos on. They are apart from package api because they carry the
// simulator's own profile and schedule types: the public client, which
// never calls these routes, then does not link the simulator.
package chaosapi

import "github.com/cairnstore/cairn/internal/chaos"

// Profile is the answer of PUT and DELETE /v1/admin/chaos/{backend}.
type Profile struct {
	Backend string        `json:"backend"`
	Profile chaos.Profile `json:"profile"`
}

// Status is the body of GET /v1/admin/chaos.
type Status struct {
	Seed       uint64                   `json:"seed"`
	Failpoints string                   `json:"failpoints,omitempty"`
	Backends   map[string]BackendStatus `json:"backends"`
}

// BackendStatus is one backend's profile and injection counts.
type BackendStatus struct {
	Profile  chaos.Profile    `json:"profile"`
	Injected map[string]int64 `json:"injected"`
}

// Schedule is the body of GET /v1/admin/chaos/{backend}/schedule.
type Schedule struct {
	Backend    string            `json:"backend"`
	Injections []chaos.Injection `json:"injections"`
	Dropped    int               `json:"dropped"`
}
