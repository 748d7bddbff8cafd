package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzConsole sends arbitrary requests to the console, with or without a
// live session, but never with its CSRF token: nothing panics, nothing
// without a session gets more than the sign-in page and the static files,
// and nothing without the CSRF token changes state.
func FuzzConsole(f *testing.F) {
	f.Add("GET", "/console/api/overview", false, "", "", "")
	f.Add("POST", "/console/api/reconcile?confirm=1", true, "x", "", "")
	f.Add("POST", "/console/api/resolve?tenant=acme&key=k", true, "", "", `{"delete":true}`)
	f.Add("POST", "/console/signout", true, "", "", "csrf=")
	f.Add("POST", "/console/signin", false, "", "http://evil.example", "token=cairn_x&next=//evil.example")
	f.Add("GET", "/console/api/docs?tenant=acme&prefix=%00&after=\xff", true, "", "", "")
	f.Add("GET", "/console/static/../page.html", false, "", "", "")
	f.Add("POST", "/console/api/chaos?backend=b", true, "", "", `{"partition":"fail"}`)
	f.Fuzz(func(t *testing.T, method, target string, withSession bool, csrf, origin, body string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") || !validMethod(method) {
			return
		}
		fx := newFixture(t, nil)
		var ck *http.Cookie
		if withSession {
			s := fx.c.sess.create()
			ck = fx.c.cookie(s)
			if csrf == s.csrf {
				return
			}
		}
		r, err := http.NewRequest(method, "http://127.0.0.1:7071"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if csrf != "" {
			r.Header.Set("X-CSRF-Token", csrf)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if ck != nil {
			r.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		ok := w.Code < 300
		path := r.URL.Path
		switch {
		case !ok:
		case method == "GET" || method == "HEAD":
			if !withSession && path != "/console/signin" && !strings.HasPrefix(path, "/console/static/") && path != "/livez" && path != "/readyz" {
				t.Fatalf("%s %s without a session: %d", method, target, w.Code)
			}
		default:
			t.Fatalf("%s %s without the CSRF token (session %v): %d %s", method, target, withSession, w.Code, w.Body)
		}
	})
}

func validMethod(m string) bool {
	if m == "" || len(m) > 10 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
