package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIngest(t *testing.T) {
	var gotQuery, gotType, gotBody string
	var gotLen int64
	status, reply := 200, `{"complete":true,"stats":{"records":3,"accepted":2,"rejected":1},"processed_bytes":30,"last_durable_line":3,"rejects":[{"line":2,"offset":10,"kind":"malformed","reason":"bad"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/tenants/acme/ingest" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		gotQuery, gotType, gotLen = r.URL.RawQuery, r.Header.Get("Content-Type"), r.ContentLength
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("X-Request-ID", "rid")
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	body := `{"id":"a"}` + "\n" + `{"id":` + "\n" + `{"id":"b"}` + "\n"
	// Lines past Size (appended while the file is sent) are not sent.
	res, err := c.Ingest(context.Background(), "acme", strings.NewReader(body+`{"id":"late"}`+"\n"), IngestOptions{KeyField: "id", Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	if gotQuery != "key_field=id" || gotType != "application/x-ndjson" || gotLen != int64(len(body)) || gotBody != body {
		t.Errorf("request: query %q, type %q, length %d, body %q", gotQuery, gotType, gotLen, gotBody)
	}
	if !res.Complete || res.Stats.Accepted != 2 || res.LastDurableLine != 3 || len(res.Rejects) != 1 || res.Rejects[0].Offset != 10 {
		t.Errorf("result %+v", res)
	}

	// A failed stream: the error and the partial result, not retried.
	status, reply = 503, `{"complete":false,"stats":{"records":1,"accepted":1},"processed_bytes":11,"last_durable_line":1,"error":{"code":"transient","message":"store closed","request_id":"rid"}}`
	calls := 0
	c = New(srv.URL, "tok", WithTransport(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { calls++; return rt.RoundTrip(r) })
	}))
	res, err = c.Ingest(context.Background(), "acme", strings.NewReader(body), IngestOptions{Schema: "marketdata"})
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, ErrUnavailable) || ce.Message != "store closed" {
		t.Fatalf("err %v, want an *Error matching ErrUnavailable", err)
	}
	if res.Complete || res.ProcessedBytes != 11 || res.LastDurableLine != 1 {
		t.Errorf("partial result %+v", res)
	}
	if calls != 1 || gotQuery != "schema=marketdata" || gotLen != -1 {
		t.Errorf("calls %d (want 1: never retried), query %q, length %d (want chunked)", calls, gotQuery, gotLen)
	}
}
