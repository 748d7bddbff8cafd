package fault_test

import (
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/internal/fault"
)

// An S3 backend turns an error answer into a classified error with context;
// everyone above reads class, context and Retry-After without string matching.
func ExampleFromS3() {
	err := fault.FromS3("SlowDown", 503, "")
	err = fault.E(fault.Unknown, fault.Context{Op: "backend.put", Backend: "s3", Tenant: "acme", Key: "k1"}, err)
	err = fmt.Errorf("upload: %w", err)

	ra, _ := fault.RetryAfter(err)
	fmt.Println(fault.ClassOf(err), errors.Is(err, fault.ErrTransient), ra)
	fmt.Println(fault.ClassOf(err).Policy().Action, fault.ContextOf(err).Backend)
	fmt.Println(err)
	// Output:
	// transient true 1s
	// retry s3
	// upload: backend.put acme/k1: s3 SlowDown
}
