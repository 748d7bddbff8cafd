package fault

import "net/http"

// Action is what a caller does with a failure of a class.
type Action uint8

const (
	// FailFast returns the error at once: retrying cannot help.
	FailFast Action = iota
	// Retry tries again with backoff and jitter, within a retry budget.
	Retry
	// Skip gives up on this item and continues with the next (the reconciler
	// quarantines a corrupt object and moves on).
	Skip
	// Break counts toward opening the circuit breaker and sheds load.
	Break
)

func (a Action) String() string {
	switch a {
	case Retry:
		return "retry"
	case Skip:
		return "skip"
	case Break:
		return "break"
	}
	return "fail_fast"
}

// Policy is one row of the class table.
type Policy struct {
	Status int    // HTTP status the server answers
	Action Action // what retry policies, breakers and the reconciler do
	// CountsAsFailure says whether a circuit breaker counts the error against
	// the dependency. Answers such as NotFound are the dependency working.
	CountsAsFailure bool
}

// table is the single map from class to HTTP status and action, used by the
// server, the retry policy and the reconciler alike.
var table = [numClasses]Policy{
	Unknown:            {http.StatusInternalServerError, FailFast, true},
	Transient:          {http.StatusServiceUnavailable, Retry, true},
	Corruption:         {http.StatusBadGateway, Skip, false},
	Exhausted:          {http.StatusServiceUnavailable, Break, true},
	Invalid:            {http.StatusBadRequest, FailFast, false},
	Config:             {http.StatusInternalServerError, FailFast, false},
	NotFound:           {http.StatusNotFound, FailFast, false},
	PreconditionFailed: {http.StatusPreconditionFailed, FailFast, false},
	Unauthorized:       {http.StatusUnauthorized, FailFast, false},
	Forbidden:          {http.StatusForbidden, FailFast, false},
	Conflict:           {http.StatusConflict, FailFast, false},
	Canceled:           {499, FailFast, false}, // nginx's "client closed request"; never sent, only logged
}

// Policy returns the table row for c.
func (c Class) Policy() Policy {
	if c < numClasses {
		return table[c]
	}
	return table[Unknown]
}

// HTTPStatus is shorthand for c.Policy().Status.
func (c Class) HTTPStatus() int { return c.Policy().Status }
