package api

// ErrorBody is the body of every error answer of both listeners:
// {"error":{"code":…,"message":…,"request_id":…}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error is the error object. Code is a failure class ("not_found",
// "invalid", "precondition_failed", …) or one of the few codes a class
// cannot express ("too_large", "method_not_allowed", "timeout",
// "too_slow", "catching_up"); Message is written for a person; RequestID
// equals the answer's X-Request-Id header.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	// ETag and Siblings name a sibling set, on a 409 for a document with
	// open siblings.
	ETag     string   `json:"etag,omitempty"`
	Siblings []string `json:"siblings,omitempty"`
}
