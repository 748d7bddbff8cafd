package fault

import (
	"errors"
	"strconv"
	"time"
)

// SlowDownDelay is the Retry-After hint [FromS3] attaches to a throttling
// answer (SlowDown and its AWS aliases) that came without a Retry-After
// header. AWS asks clients to "reduce your request rate"; exponential
// backoff starting at tens of milliseconds would come back too soon, so a
// throttled retry waits at least this long.
const SlowDownDelay = time.Second

// s3Codes maps the S3 error codes cairn meets (AWS, MinIO, SeaweedFS) to a
// class. Codes not listed go by the HTTP status (see ClassOfS3).
var s3Codes = map[string]Class{
	// The service is overloaded or hiccuped: retry with backoff.
	"SlowDown":                   Transient,
	"Throttling":                 Transient,
	"ThrottlingException":        Transient,
	"RequestLimitExceeded":       Transient,
	"TooManyRequestsException":   Transient,
	"SlowDownRead":               Transient, // MinIO
	"SlowDownWrite":              Transient,
	"RequestThrottled":           Transient,
	"RequestTimeout":             Transient,
	"InternalError":              Transient,
	"ServiceUnavailable":         Transient,
	"OperationAborted":           Transient, // a conflicting operation on the bucket is in progress
	"XMinioServerNotInitialized": Transient,

	// Answers, not failures of the dependency.
	"NoSuchKey":                  NotFound,
	"NoSuchVersion":              NotFound,
	"NoSuchUpload":               NotFound,
	"PreconditionFailed":         PreconditionFailed,
	"NotModified":                PreconditionFailed,
	"ConditionalRequestConflict": Conflict,

	// Bytes were damaged between us and the store.
	"BadDigest":                 Corruption,
	"XAmzContentSHA256Mismatch": Corruption,
	"InvalidDigest":             Invalid,

	// The request itself is wrong.
	"InvalidArgument":  Invalid,
	"InvalidRequest":   Invalid,
	"InvalidRange":     Invalid,
	"EntityTooLarge":   Invalid,
	"EntityTooSmall":   Invalid,
	"KeyTooLongError":  Invalid,
	"MalformedXML":     Invalid,
	"MetadataTooLarge": Invalid,

	// Credentials.
	"InvalidAccessKeyId":    Unauthorized,
	"SignatureDoesNotMatch": Unauthorized,
	"ExpiredToken":          Unauthorized,
	"InvalidToken":          Unauthorized,
	"AccessDenied":          Forbidden,
	"XAdminUserNotFound":    Unauthorized, // versitygw's unknown access key, a 404

	// The operator's setup: wrong bucket, region, endpoint or clock.
	"NoSuchBucket":                 Config,
	"InvalidBucketName":            Config,
	"PermanentRedirect":            Config,
	"AuthorizationHeaderMalformed": Config,
	"RequestTimeTooSkewed":         Config,
	"NotImplemented":               Config,
	"InvalidStorageClass":          Config,

	// Out of room.
	"QuotaExceeded":                  Exhausted,
	"XMinioStorageFull":              Exhausted,
	"XMinioAdminBucketQuotaExceeded": Exhausted,
}

// s3Throttle lists the codes that mean "slow down" rather than "failed".
var s3Throttle = map[string]bool{
	"SlowDown":                 true,
	"Throttling":               true,
	"ThrottlingException":      true,
	"RequestLimitExceeded":     true,
	"TooManyRequestsException": true,
	"SlowDownRead":             true,
	"SlowDownWrite":            true,
	"RequestThrottled":         true,
}

// ClassOfS3 returns the class of an S3 error answer: by its code when the
// code is known; else a 429 is Transient (a throttle) and a 404 with a
// code is Config (not an absent object: only the codes above say that);
// else by its HTTP status ([ClassOfHTTPStatus]); else Transient when there
// is a code but neither is recognised (an S3 error with no usable status
// is most often a proxy or gateway hiccup).
func ClassOfS3(code string, status int) Class {
	if c, ok := s3Codes[code]; ok {
		return c
	}
	if status == 429 {
		// Too many requests, whatever the code (a proxy's has none): a
		// throttle, retried after its Retry-After.
		return Transient
	}
	if status == 404 && code != "" {
		// Only the codes above say an object or version is absent. A 404
		// with another code is the gateway's about something else (an
		// unknown user, a wrong endpoint path): taken for "absent", it
		// made a restoring node answer 404 for documents that exist.
		return Config
	}
	if c := ClassOfHTTPStatus(status); c != Unknown {
		return c
	}
	if code != "" {
		return Transient
	}
	return Unknown
}

// FromS3 converts an S3 error answer (the Code of the XML error body, the
// HTTP status and the raw Retry-After header, "" if absent) into an *Error
// of the right class, or nil when code is empty and status is not a failure.
// A throttling code without a Retry-After header carries [SlowDownDelay].
// It takes strings rather than a client library's error type so that fault
// does not import minio or the AWS SDK; the s3 backend extracts them.
func FromS3(code string, status int, retryAfter string) error {
	return fromS3At(code, status, retryAfter, time.Now())
}

func fromS3At(code string, status int, retryAfter string, now time.Time) error {
	c := ClassOfS3(code, status)
	if c == Unknown {
		return nil
	}
	msg := "s3 " + code
	if code == "" {
		msg = "s3 http " + strconv.Itoa(status)
	}
	err := error(New(c, Context{}, msg))
	if s3Throttle[code] || status == 429 || status == 503 {
		err = Throttled(err)
	}
	if d, ok := ParseRetryAfter(retryAfter, now); ok {
		return WithRetryAfter(err, d)
	}
	if s3Throttle[code] || status == 429 {
		return WithRetryAfter(err, SlowDownDelay)
	}
	return err
}

// throttled marks a store's answer asking its client to slow down.
type throttled struct{ error }

func (t throttled) Unwrap() error { return t.error }

// Throttled marks err as a store's answer asking its client to slow down
// (S3's SlowDown and its kin, a 429 or a 503), which the backends' policy
// counts apart from other failures: the operator's remedy differs.
func Throttled(err error) error { return throttled{err} }

// IsThrottled reports whether err, or an error it wraps, is marked by
// [Throttled].
func IsThrottled(err error) bool {
	var t throttled
	return errors.As(err, &t)
}
