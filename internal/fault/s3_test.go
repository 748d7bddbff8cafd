package fault

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassOfS3(t *testing.T) {
	tests := []struct {
		code   string
		status int
		want   Class
	}{
		{"SlowDown", 503, Transient},
		{"RequestTimeout", 400, Transient}, // S3 sends RequestTimeout with 400: the code wins
		{"InternalError", 500, Transient},
		{"ServiceUnavailable", 503, Transient},
		{"PreconditionFailed", 412, PreconditionFailed},
		{"NoSuchKey", 404, NotFound},
		{"NoSuchBucket", 404, Config}, // the code wins over the status
		{"AccessDenied", 403, Forbidden},
		{"InvalidAccessKeyId", 403, Unauthorized},
		{"BadDigest", 400, Corruption},
		{"EntityTooLarge", 400, Invalid},
		{"XMinioStorageFull", 507, Exhausted},
		{"RequestTimeTooSkewed", 403, Config},
		{"XAdminUserNotFound", 404, Unauthorized},
		{"", 429, Transient}, // a proxy's throttle: retried, not the node's limit
		{"429 Too Many Requests", 429, Transient},
		{"SomethingNew", 404, Config},   // a 404 not about an object: never "absent"
		{"", 404, NotFound},             // a HEAD's 404 has no body
		{"SomethingNew", 409, Conflict}, // unknown code: by status
		{"SomethingNew", 0, Transient},  // unknown code, no status
		{"", 502, Transient},
		{"", 200, Unknown},
	}
	for _, tt := range tests {
		if got := ClassOfS3(tt.code, tt.status); got != tt.want {
			t.Errorf("ClassOfS3(%q, %d) = %v, want %v", tt.code, tt.status, got, tt.want)
		}
	}
}

func TestFromS3(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		code, retryAfter string
		status           int
		wantClass        Class
		wantRA           time.Duration
		wantHasRA        bool
		wantMsg          string
	}{
		{code: "SlowDown", status: 503, wantClass: Transient, wantRA: SlowDownDelay, wantHasRA: true, wantMsg: "s3 SlowDown"},
		{code: "SlowDown", status: 503, retryAfter: "4", wantClass: Transient, wantRA: 4 * time.Second, wantHasRA: true, wantMsg: "s3 SlowDown"},
		{code: "ServiceUnavailable", status: 503, wantClass: Transient, wantMsg: "s3 ServiceUnavailable"},
		{code: "NoSuchKey", status: 404, wantClass: NotFound, wantMsg: "s3 NoSuchKey"},
		{code: "", status: 500, wantClass: Transient, wantMsg: "s3 http 500"},
	}
	for _, tt := range tests {
		err := fromS3At(tt.code, tt.status, tt.retryAfter, now)
		if got := ClassOf(err); got != tt.wantClass {
			t.Errorf("FromS3(%q) class = %v, want %v", tt.code, got, tt.wantClass)
		}
		if got := MessageOf(err); got != tt.wantMsg {
			t.Errorf("FromS3(%q) msg = %q, want %q", tt.code, got, tt.wantMsg)
		}
		if ra, ok := RetryAfter(err); ra != tt.wantRA || ok != tt.wantHasRA {
			t.Errorf("FromS3(%q, %q) RetryAfter = %v, %v; want %v, %v", tt.code, tt.retryAfter, ra, ok, tt.wantRA, tt.wantHasRA)
		}
	}
	for _, tt := range []struct {
		code   string
		status int
		want   bool
	}{{"SlowDown", 503, true}, {"ServiceUnavailable", 503, true}, {"", 429, true}, {"RequestLimitExceeded", 400, true},
		{"InternalError", 500, false}, {"NoSuchKey", 404, false}} {
		if got := IsThrottled(fmt.Errorf("op: %w", FromS3(tt.code, tt.status, ""))); got != tt.want {
			t.Errorf("IsThrottled(FromS3(%q, %d)) = %v, want %v", tt.code, tt.status, got, tt.want)
		}
	}
	if err := FromS3("", 200, ""); err != nil {
		t.Errorf("FromS3 of a success = %v, want nil", err)
	}
	if err := FromS3("NoSuchKey", 404, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("FromS3(NoSuchKey) = %v, want errors.Is ErrNotFound", err)
	}
}

func TestS3TablesAgree(t *testing.T) {
	for code := range s3Throttle {
		if s3Codes[code] != Transient {
			t.Errorf("throttle code %q has class %v, want transient", code, s3Codes[code])
		}
	}
}
