package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium at desktop width and returns its
// context; the browser is closed when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // the tests may run as root, which Chromium's sandbox refuses
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// run runs actions, failing the test with what it was doing.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(step, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, text)
	}
}

// until waits for a JavaScript expression to be truthy.
func until(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(step, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// shoot writes a screenshot of the page at 1280 px and at 390 px width.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := artifacts(t)
	for _, w := range []struct {
		width, height int64
	}{{1280, 900}, {390, 844}} {
		run(t, ctx, "viewport for "+name, chromedp.EmulateViewport(w.width, w.height))
		png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
		file := filepath.Join(dir, name+"-"+strconv.FormatInt(w.width, 10)+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ctx, "back to desktop width", chromedp.EmulateViewport(1280, 900))
}

// TestConsoleInBrowser drives the console of two nodes sharing a backend
// under the manual policy: sign in, browse to a document, resolve a
// conflict from the page (seen through the API of both nodes), start a
// round from the page and see it finish, see a slowed round's progress
// and ETA, set a chaos profile, and see a conflict's changes against its
// common ancestor; with a screenshot of every page.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	shared := "shared=fs:" + t.TempDir()
	// shop merges, falling back to siblings: its bases keep their bodies,
	// the ancestors the conflicts page shows.
	args := []string{"--backend", shared, "--conflict-policy", "demo=manual", "--conflict-policy", "shop=merge/manual",
		"--tenant", "shop:" + sum(shopToken), "--reconcile-interval", "0", "--enable-chaos", "--chaos-seed", "7"}
	// a checkpoints (and so shows its progress) every 20 keys: a round of
	// a few hundred keys shows it running.
	// Its rounds list every key (full rounds), so that the slowed round
	// has keys to show progress over.
	a := startNode(t, "127.0.0.1", append(args, "--reconcile-checkpoint-every", "20", "--full-rounds")...)
	// b has a second backend of its own, which the ancestor scenario
	// below cuts off: its base keeps the ancestor after the siblings form.
	b := startNode(t, "127.0.0.1", append(args, "--backend", "solo=fs:"+t.TempDir())...)

	a.put(t, "greeting", `{"hello":"world","from":"the console test"}`)
	for i := range 3 {
		a.put(t, "users/"+strconv.Itoa(i), `{"name":"user `+strconv.Itoa(i)+`","admin":false}`)
	}
	// The same key written on both nodes before either saw the other's
	// version: concurrent versions, kept as siblings under manual.
	b.put(t, "order-42", `{"item":"lamp","qty":1,"from":"b"}`)
	a.put(t, "order-42", `{"item":"lamp","qty":2,"from":"a","note":"rush"}`)
	settle(t, a, b)
	var fromB string
	for name, n := range map[string]*node{"a": a, "b": b} {
		code, out := do(t, "GET", n.API+"/v1/tenants/demo/conflicts/order-42", "")
		var cf struct {
			Siblings []struct {
				ETag string
				Body json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(out), &cf); code != 200 || err != nil || len(cf.Siblings) != 2 {
			t.Fatalf("the conflict on %s: %d %s", name, code, out)
		}
		for _, s := range cf.Siblings {
			if strings.Contains(string(s.Body), `"from":"b"`) {
				fromB = s.ETag
			}
		}
	}

	// Sign in.
	run(t, ctx, "open the console", chromedp.Navigate(a.Admin+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shoot(t, ctx, "signin")
	run(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#ov-rate")))
	html := get(t, ctx, "read the overview", chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(html, adminToken) {
		t.Fatal("the overview page contains the admin token")
	}
	// Live: the request rate appears on a later poll without a reload.
	run(t, ctx, "see the overview's rates",
		until(`document.querySelector("h2 .muted") && document.querySelector("h2 .muted").textContent.includes("over the last")`))
	// The disk's free space and what the store keeps free, with no alarm
	// on a node with room.
	run(t, ctx, "see the disk's room",
		until(`document.querySelector("#ov-disk") && /B \(.*B\)$/.test(document.querySelector("#ov-disk").textContent) && !document.querySelector("#ov-alarm")`))
	shoot(t, ctx, "overview")

	run(t, ctx, "tenants", chromedp.Navigate(a.Admin+"/console/tenants"),
		until(`document.body.textContent.includes("manual")`),
		// The request rate, from the second poll on: live, no reload.
		until(`document.querySelector("td.rate") && document.querySelector("td.rate").textContent !== "–"`))
	shoot(t, ctx, "tenants")

	// Browse to a document.
	run(t, ctx, "documents", chromedp.Navigate(a.Admin+"/console/documents?tenant=demo"),
		chromedp.WaitVisible(chromedp.CSS(`a.doc-link[data-key="greeting"]`)),
		chromedp.Click(chromedp.CSS(`a.doc-link[data-key="greeting"]`)),
		until(`document.querySelector("#doc-body") && document.querySelector("#doc-body").textContent.includes("the console test")`))
	shoot(t, ctx, "document")
	run(t, ctx, "an unknown tenant in the URL shows the first, named", chromedp.Navigate(a.Admin+"/console/documents?tenant=ghost"),
		until(`document.querySelector("#tenant") && document.querySelector("#tenant").value === "demo" && document.querySelector('a.doc-link[data-key="greeting"]') !== null`))
	run(t, ctx, "page through a prefix",
		chromedp.SetValue(chromedp.CSS("#prefix"), "users/"),
		chromedp.Click(chromedp.CSS("#browse")),
		until(`document.querySelectorAll("a.doc-link").length === 3 && !document.querySelector('a.doc-link[data-key="greeting"]')`))

	// Resolve the conflict from the page, choosing b's version. Both
	// siblings are first writes: no common ancestor exists.
	run(t, ctx, "conflicts", chromedp.Navigate(a.Admin+"/console/conflicts?tenant=demo&key=order-42"),
		chromedp.WaitVisible(chromedp.CSS(`button.choose`)),
		until(`document.querySelector("#no-ancestor") && document.querySelector("#no-ancestor").textContent.includes("No common ancestor known")`+
			` && !document.querySelector("#three-way") && document.querySelector("#no-ancestor td.changed")`))
	// The siblings' leaves line up by path only when they are the same
	// place: {"a/b":1} is not {"a":{"b":1}}, nor [5] {"0":5}.
	keys := func(v string) string { return `JSON.stringify([...flatten(` + v + `, "", new Map()).keys()])` }
	run(t, ctx, "paths tell shapes apart", until(keys(`{"a/b":1}`)+` !== `+keys(`{"a":{"b":1}}`)+
		` && `+keys(`[5]`)+` !== `+keys(`{"0":5}`)+` && `+keys(`{"a~b":1}`)+` === '["/a~0b"]'`))
	shoot(t, ctx, "conflict")
	run(t, ctx, "resolve",
		chromedp.Click(chromedp.CSS(`button.choose[data-etag='`+fromB+`']`)),
		until(`document.querySelector("#banner.ok") && document.querySelector("#banner").textContent.includes("Resolved")`))
	shoot(t, ctx, "conflicts-resolved")
	settle(t, a, b)
	for name, n := range map[string]*node{"a": a, "b": b} {
		if code, out := do(t, "GET", n.API+"/v1/tenants/demo/docs/order-42", ""); code != 200 || !strings.Contains(out, `"from":"b"`) {
			t.Fatalf("order-42 on %s after the resolution from the page: %d %s", name, code, out)
		}
	}
	run(t, ctx, "the resolution in the document's history",
		chromedp.Navigate(a.Admin+"/console/documents?tenant=demo&key=order-42"),
		until(`document.querySelectorAll("#history tbody tr").length === 1 && document.querySelector("#doc-body").textContent.includes("lamp")`))
	shoot(t, ctx, "document-history")

	// Start a round from the page and see it on the page.
	code, out := do(t, "GET", a.Admin+"/v1/admin/reconcile", "")
	var st struct {
		Backends []struct {
			Tenants []struct {
				Tenant string
				Last   *struct{ Started string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &st); code != 200 || err != nil || len(st.Backends) != 1 {
		t.Fatalf("reconcile status: %d %s", code, out)
	}
	before := ""
	for _, tp := range st.Backends[0].Tenants {
		if tp.Tenant == "demo" && tp.Last != nil {
			before = tp.Last.Started
		}
	}
	row := `document.querySelector('tr.tenant-progress[data-backend="shared"][data-tenant="demo"]')`
	run(t, ctx, "replication", chromedp.Navigate(a.Admin+"/console/replication"),
		until(row+` !== null`))
	run(t, ctx, "start a round",
		chromedp.Click(chromedp.CSS("#run-round")),
		until(`document.querySelector("#banner").textContent.includes("Round started")`),
		until(row+`.dataset.started !== "" && `+row+`.dataset.started !== `+strconv.Quote(before)))
	shoot(t, ctx, "replication")

	// A round slowed by the chaos latency profile (every listing call of
	// the shared backend waits), over enough keys that the page catches it
	// running: progress against the last round's size, and an ETA.
	for i := range 300 {
		a.put(t, fmt.Sprintf("bulk/%03d", i), `{"n":`+strconv.Itoa(i)+`}`)
	}
	a.roundOn(t, "shared") // a whole round: the next one's estimate
	if code, out := do(t, "PUT", a.Admin+"/v1/admin/chaos/shared", `{"latency":{"p":1,"mean_ms":300},"ops":["list"]}`); code != 200 {
		t.Fatalf("slowing the backend: %d %s", code, out)
	}
	running := row + ` && ` + row + `.querySelector(".round-running")`
	run(t, ctx, "start a slow round and see its progress",
		chromedp.Click(chromedp.CSS("#run-round")),
		until(running+` && /\d+ of ~\d+ keys, ETA \d/.test(`+row+`.textContent)`+
			` && parseFloat(`+row+`.querySelector(".bar > span").style.width) > 0`))
	shoot(t, ctx, "replication-running")
	if code, out := do(t, "DELETE", a.Admin+"/v1/admin/chaos/shared", ""); code != 200 {
		t.Fatalf("healing the backend: %d %s", code, out)
	}
	run(t, ctx, "see the slow round finish", until(row+` && !`+row+`.querySelector(".round-running")`))

	// An upload that fails shows in the tenant's row, at every width.
	if code, out := do(t, "PUT", a.Admin+"/v1/admin/chaos/shared", `{"fail_before":1,"ops":["put"]}`); code != 200 {
		t.Fatalf("failing the backend's puts: %d %s", code, out)
	}
	a.put(t, "upload/fails", `{"n":1}`)
	run(t, ctx, "see the upload error", until(row+` && `+row+`.querySelector(".upload-error")`+
		` && /upload: /.test(`+row+`.querySelector(".upload-error").textContent)`))
	shoot(t, ctx, "replication-upload-error")
	if code, out := do(t, "DELETE", a.Admin+"/v1/admin/chaos/shared", ""); code != 200 {
		t.Fatalf("healing the backend: %d %s", code, out)
	}

	// Chaos: set a profile from the page and see it through the admin API.
	run(t, ctx, "chaos", chromedp.Navigate(a.Admin+"/console/chaos"),
		chromedp.WaitVisible(chromedp.CSS("#chaos-profile")),
		until(`document.body.textContent.includes("Seed 7")`), // the node's --chaos-seed, exactly
		chromedp.SetValue(chromedp.CSS("#chaos-profile"), `{"latency":{"p":0.5,"mean_ms":1}}`),
		chromedp.Click(chromedp.CSS("#chaos-apply")),
		until(`document.querySelector("#banner").textContent.includes("set")`))
	if code, out := do(t, "GET", a.Admin+"/v1/admin/chaos", ""); code != 200 || !strings.Contains(out, `"mean_ms": 1`) {
		t.Fatalf("chaos status after the page set a profile: %d %s", code, out)
	}
	shoot(t, ctx, "chaos")
	run(t, ctx, "heal", chromedp.Click(chromedp.CSS("#chaos-heal")),
		until(`document.querySelector("#banner").textContent.includes("Healed")`))

	ancestorView(t, ctx, a, b)

	// Sign out: the pages are closed again.
	run(t, ctx, "sign out", chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Navigate(a.Admin+"/console/overview"), chromedp.WaitVisible(chromedp.CSS("#token")))
}

// ancestorView makes siblings of a merge tenant's document whose common
// ancestor b still holds, and checks b's conflicts page shows each
// sibling's changes against it, while a, which holds no ancestor, says so.
func ancestorView(t *testing.T, ctx context.Context, a, b *node) {
	t.Helper()
	a.putIn(t, "shop", "cart", `{"items":["lamp"],"qty":1,"note":"the ancestor"}`)
	settle(t, a, b) // b holds it, with its body kept as the base of both its backends
	// Cut b's own backend off: its base stays the ancestor.
	if code, out := do(t, "PUT", b.Admin+"/v1/admin/chaos/solo", `{"partition":"fail"}`); code != 200 {
		t.Fatalf("cutting solo off: %d %s", code, out)
	}
	// qty changed on both sides: no merge, so siblings.
	b.putIn(t, "shop", "cart", `{"items":["lamp"],"qty":3,"note":"the ancestor"}`)
	a.putIn(t, "shop", "cart", `{"items":["lamp","desk"],"qty":2,"note":"the ancestor"}`)
	settleOn(t, "shared", a, b)
	for name, n := range map[string]*node{"a": a, "b": b} {
		if code, out := do(t, "GET", n.API+"/v1/tenants/shop/conflicts/cart", ""); code != 200 || strings.Count(out, `"etag"`) < 2 {
			t.Fatalf("the shop conflict on %s: %d %s", name, code, out)
		}
	}

	run(t, ctx, "a's conflict has no ancestor", chromedp.Navigate(a.Admin+"/console/conflicts?tenant=shop&key=cart"),
		until(`document.querySelector("#no-ancestor") !== null`))
	run(t, ctx, "sign in to b", chromedp.Navigate(b.Admin+"/console/conflicts?tenant=shop&key=cart"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#tenant")),
		// The sign-in leads back to the page, not to its query.
		chromedp.Navigate(b.Admin+"/console/conflicts?tenant=shop&key=cart"),
		chromedp.WaitVisible(chromedp.CSS("button.choose")))
	// Which sibling is which follows the last-writer order: find a's by
	// its body, and read the row of each path.
	cell := func(path, what string) string {
		return `(() => { const rows = [...document.querySelectorAll("#three-way tr.change")];
			const r = rows.find(r => r.querySelector("td.path").textContent === ` + strconv.Quote(path) + `);
			if (!r) return null; const tds = r.querySelectorAll("td");
			const ia = [...document.querySelectorAll(".sibling pre")].findIndex(p => p.textContent.includes("desk"));
			return ` + what + `; })()`
	}
	run(t, ctx, "b's conflict against its ancestor",
		until(`document.querySelector("#three-way") && !document.querySelector("#no-ancestor")`+
			` && document.querySelector("#ancestor-body").textContent.includes("the ancestor")`+
			` && document.querySelector("#three-way").textContent.includes("backend solo")`),
		// qty: changed by both, from 1.
		until(cell("/qty", `tds[1].textContent === "1" && tds[2].dataset.op === "changed" && tds[3].dataset.op === "changed"`)),
		// items/1: added by a's sibling only.
		until(cell("/items/1", `ia >= 0 && tds[1].textContent === "(absent)" && tds[2 + ia].dataset.op === "added"`+
			` && tds[2 + ia].textContent.includes("desk") && tds[3 - ia].textContent === "unchanged"`)),
		// note: changed by neither, so not listed.
		until(cell("/note", `false`)+` === null`))
	shoot(t, ctx, "conflict-ancestor")
}

// TestConsoleNodeGone: when the node stops answering, a page that polls
// says so, with the time of what it still shows, and greys that out; it
// showed the last figures as if current, under "Failed to fetch".
func TestConsoleNodeGone(t *testing.T) {
	ctx := browser(t)
	n := startNode(t, "127.0.0.1")
	run(t, ctx, "sign in", chromedp.Navigate(n.Admin+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#ov-rate")))
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "see the node gone",
		until(`document.querySelector("#banner").textContent.includes("the node did not answer")`+
			` && document.querySelector("#banner").textContent.includes("What is shown is from")`+
			` && document.querySelector("#content").classList.contains("stale")`))
	shoot(t, ctx, "node-gone")
}

// TestConsoleKeysAndFailedListings: a key's direction marks are spelt out
// (a key "rtl<U+202E>gnp.exe" must not read as "rtlexe.png") and a very
// long key wraps within the page; a tenant the URL names and the node
// lacks stays announced once the listing of the one shown has loaded; and
// a conflicts listing that fails replaces the listing shown, which belongs
// to the tenant before, with the error.
func TestConsoleKeysAndFailedListings(t *testing.T) {
	ctx := browser(t)
	n := startNode(t, "127.0.0.1", "--tenant", "shop:"+sum(shopToken))
	long := strings.Repeat("k", 1000)
	n.put(t, "rtl\u202egnp.exe", `{}`)
	n.put(t, long, `{}`)
	run(t, ctx, "sign in", chromedp.Navigate(n.Admin+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#ov-rate")))

	run(t, ctx, "documents of a tenant the node lacks",
		chromedp.Navigate(n.Admin+"/console/documents?tenant=nosuch"),
		until(`document.querySelectorAll("a.doc-link").length === 2`),
		until(`!document.querySelector("#banner").hidden && document.querySelector("#banner").textContent.includes("No tenant “nosuch”")`))
	run(t, ctx, "the direction mark spelt out",
		until(`[...document.querySelectorAll("a.doc-link")].some(a => a.textContent === "rtl<U+202E>gnp.exe")`))
	run(t, ctx, "open the long key",
		// Clicked from the page: the link is taller than a line, and a
		// click at its box's centre may fall between its lines.
		until(`(() => { document.querySelector('a.doc-link[data-key^="kkkk"]').click(); return true; })()`),
		until(`document.querySelector("#doc h2") !== null && document.querySelector("#doc h2").textContent.length === 1000`))
	if w := get(t, ctx, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 1280 {
		shoot(t, ctx, "long-key")
		t.Errorf("the page is %d px wide with a long key open, in a 1280 px window", w)
	}

	run(t, ctx, "conflicts of demo",
		chromedp.Navigate(n.Admin+"/console/conflicts?tenant=demo"),
		until(`document.body.textContent.includes("No open conflicts in this tenant")`))
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "pick shop with the node gone",
		until(`(() => { const s = document.querySelector("#tenant"); s.value = "shop"; s.dispatchEvent(new Event("change")); return true; })()`),
		until(`document.querySelector("#conflicts-error") !== null && !document.body.textContent.includes("No open conflicts in this tenant")`))
}
