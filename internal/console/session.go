package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

// cookieName is the session cookie's name.
const cookieName = "cairn_console"

// maxSessions bounds the session table: sign-ins past it replace the
// session closest to its expiry, so a flood of sign-ins costs memory once.
const maxSessions = 1024

// session is one signed-in browser.
type session struct {
	id      string
	csrf    string // the synchronizer token of its state-changing requests
	expires time.Time
}

// sessions is the server-side session table.
type sessions struct {
	now func() time.Time
	ttl time.Duration

	mu   sync.Mutex // guards byID
	byID map[string]*session
}

func newSessions(now func() time.Time, ttl time.Duration) *sessions {
	return &sessions{now: now, ttl: ttl, byID: map[string]*session{}}
}

// token returns 256 random bits, URL-safe.
func token() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand's documented behaviour)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create makes a session, sweeping the expired ones first.
func (t *sessions) create() *session {
	s := &session{id: token(), csrf: token(), expires: t.now().Add(t.ttl)}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var soonest *session
	for id, o := range t.byID {
		if !now.Before(o.expires) {
			delete(t.byID, id)
			continue
		}
		if soonest == nil || o.expires.Before(soonest.expires) {
			soonest = o
		}
	}
	if len(t.byID) >= maxSessions && soonest != nil {
		delete(t.byID, soonest.id)
	}
	t.byID[s.id] = s
	return s
}

// lookup returns the live session the request's cookie names, or nil.
func (t *sessions) lookup(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil || len(ck.Value) > 64 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byID[ck.Value]
	if s != nil && !t.now().Before(s.expires) {
		delete(t.byID, s.id)
		return nil
	}
	return s
}

func (t *sessions) remove(s *session) {
	t.mu.Lock()
	delete(t.byID, s.id)
	t.mu.Unlock()
}

// cookie is the session's cookie; with s nil, the one that clears it.
func (c *Console) cookie(s *session) *http.Cookie {
	ck := &http.Cookie{Name: cookieName, Path: "/console/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.o.SecureCookie}
	if s == nil {
		ck.MaxAge = -1
		return ck
	}
	ck.Value = s.id
	ck.MaxAge = int(c.o.SessionTTL / time.Second)
	return ck
}

// checkCSRF refuses a state-changing request without the session's token
// (header X-CSRF-Token, or form field csrf) or from another origin.
func (c *Console) checkCSRF(r *http.Request, s *session) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(nil, r.Body, 4096)
		got = r.PostFormValue("csrf")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		return fault.New(fault.Forbidden, fault.Context{Op: "console"}, "missing or wrong CSRF token: reload the page")
	}
	return nil
}

// sameOrigin refuses a request whose Origin (sent by browsers on every
// POST) names another origin than the one it was sent to.
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err == nil && u.Host == r.Host {
		return nil
	}
	return fault.New(fault.Forbidden, fault.Context{Op: "console"}, "cross-origin request refused")
}

// signinPage serves the sign-in form; a signed-in browser goes on to the
// overview.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if c.sess.lookup(r) != nil {
		http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "signin.html", shell{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next")), Open: c.open(r)})
}

// open reports whether the request may sign in without a token.
func (c *Console) open(r *http.Request) bool { return c.o.Open && loopback(r) }

// signin checks the admin token of the sign-in form and starts a session.
// A wrong token spends the node's budget of failed authentications, and
// the page never shows the token that was sent.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		c.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := r.PostFormValue("token")
	next := safeNext(r.PostFormValue("next"))
	if !c.open(r) {
		msg := ""
		switch {
		case tok == "":
			msg = "Enter the admin token."
		case len(tok) > server.MaxTokenBytes || !c.o.IsAdmin(tok):
			msg = "That is not an admin token of this node."
		}
		if msg != "" {
			code := http.StatusUnauthorized
			if c.o.AuthFailed != nil {
				if ok, wait := c.o.AuthFailed(); !ok {
					code = http.StatusTooManyRequests
					w.Header().Set("Retry-After", retryAfter(wait))
					msg = "Too many failed sign-ins on this node; try again later."
				}
			}
			c.render(w, code, "signin.html", shell{Title: "Sign in", Error: msg, Next: next})
			return
		}
	}
	s := c.sess.create()
	c.logAction(r, "console: signed in")
	http.SetCookie(w, c.cookie(s))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// safeNext keeps a post-sign-in destination inside the console, so the
// sign-in page cannot be made to send a browser elsewhere: one of the
// console's pages, with its query (the tenant and key the page shows)
// encoded afresh.
func safeNext(next string) string {
	path, query, _ := strings.Cut(next, "?")
	for _, p := range pageNames {
		if path != "/console/"+p {
			continue
		}
		if v, err := url.ParseQuery(query); err == nil && len(v) > 0 {
			return path + "?" + v.Encode()
		}
		return path
	}
	return "/console/overview"
}

// signout ends the session.
func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sess.remove(s)
	http.SetCookie(w, c.cookie(nil))
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}
