// Package backend is the interface to cairn's remote storage: a small
// consumer-style [Backend] (list, get, stat, put, delete) over
// self-describing objects named by (tenant, key), the object format, and
// the key naming shared by the implementations (mem, fs, s3). The package
// documentation is completed in doc.go.
package backend
