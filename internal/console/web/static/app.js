// cairn console: fills each page from the JSON endpoints under
// /console/api/ and polls them, so nothing needs a reload. Every value is
// put in the page as text (never as HTML), so a document cannot inject
// markup.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const app = document.getElementById("app");
const content = document.getElementById("content");
const banner = document.getElementById("banner");
const params = new URLSearchParams(location.search);

// h makes an element: h("td", {class: "num"}, "12", child, ...).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || ("HTTP " + status));
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}

async function call(method, path, body, headers) {
  const opts = { method, headers: Object.assign({ "Accept": "application/json" }, headers || {}), credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let res;
  try { res = await fetch(path, opts); }
  catch (e) { throw new Error("the node did not answer (" + e.message + ")"); } // nothing answered at all
  if (res.status === 401) { location.href = "/console/signin?next=" + encodeURIComponent(location.pathname + location.search); throw new APIError(401, null); }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

function say(msg, kind) {
  if (!msg) { banner.hidden = true; return; }
  banner.hidden = false;
  banner.className = "banner " + (kind || "");
  banner.textContent = msg;
}

// poll runs fn now and every ms while the page is open; an error shows in
// the banner, with the time of what is still shown, which is greyed out
// (it is no longer current), and the next poll tries again.
function poll(fn, ms) {
  let stopped = false, shown = null;
  const content = document.getElementById("content");
  async function tick() {
    try {
      await fn();
      shown = new Date();
      content.classList.remove("stale");
      if (banner.dataset.fromPoll) { say(""); delete banner.dataset.fromPoll; }
    } catch (e) {
      if (e.status !== 401) {
        say("Could not refresh: " + e.message + (shown ? ". What is shown is from " + shown.toLocaleTimeString([], { hour12: false }) + "." : ""), "error");
        banner.dataset.fromPoll = "1";
        if (shown) content.classList.add("stale");
      }
    }
    if (!stopped) setTimeout(tick, ms);
  }
  tick();
  return () => { stopped = true; };
}

const fmt = {
  // key shows a document key with its invisible direction, formatting and
  // separator marks spelt out (<U+202E>): a key "x\u202Egnp.exe" must not
  // read as "xexe.png", nor a key with such a mark look like the same key
  // without it.
  key(k) { return String(k).replace(/[\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\u{e0000}-\u{e007f}]/gu, c => "<U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + ">"); },
  n(v, d) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: d === undefined ? 1 : d }); },
  bytes(v) {
    if (v === null || v === undefined) return "–";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + u[i];
  },
  pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %"; },
  dur(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    const d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + hh + "h"; if (hh) return hh + "h " + m + "m"; if (m) return m + "m " + (s % 60) + "s"; return s + "s";
  },
  json(v) { return JSON.stringify(v, null, 2); },
};

function stat(label, value, id, small) { return h("div", { class: "card stat" }, h("div", { class: "label" }, label), h("div", { class: small ? "value small" : "value", id }, value)); }

function table(headers, rows, empty) {
  if (!rows.length) return h("div", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map(c => h("th", { class: c.cls }, c.t)))),
    h("tbody", {}, rows)));
}

function setContent(...kids) { content.replaceChildren(...kids); }

// keep: the query parameters that say where the page is, so a URL names it.
function keep(next) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(next)) if (v) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

// ---- overview

function overview() {
  poll(async () => {
    const o = await call("GET", "/console/api/overview");
    const routes = o.routes.map(r => h("tr", {},
      h("td", { class: "mono" }, r.route || "(unrouted)"),
      h("td", { class: "num" }, fmt.n(r.rate)),
      h("td", { class: "num" }, fmt.n(r.error_rate, 2)),
      h("td", { class: "num" }, r.p99_ms === null ? "–" : fmt.n(r.p99_ms, 2)),
      h("td", { class: "num hide-narrow" }, fmt.n(r.requests_total, 0))));
    // What refuses writes, above the figures: a failed store refuses
    // everything until a restart; a disk under the reserve, every write.
    const low = o.disk_free_bytes !== null && o.disk_reserve_bytes !== null && o.disk_free_bytes < o.disk_reserve_bytes;
    const alarm = o.store_failed ? "The store failed: the node refuses every request until it restarts (runbook 14)."
      : low ? "The disk is nearly full: the node refuses writes until space is freed (runbook 13)." : "";
    setContent(
      ...(alarm ? [h("div", { class: "card", id: "ov-alarm" }, h("span", { class: "pill bad" }, o.store_failed ? "store failed" : "disk nearly full"), " ", alarm)] : []),
      h("div", { class: "grid" },
        stat("Node", o.node_id, null, true), stat("Version", o.version, null, true), stat("Uptime", fmt.dur(o.uptime_seconds)),
        stat("Requests/s", fmt.n(o.request_rate), "ov-rate"), stat("Errors/s (5xx)", fmt.n(o.error_rate, 2)),
        stat("Shed/s (the node's limits)", fmt.n(o.shed_rate, 2)), stat("Shed total", fmt.n(o.shed_total, 0)),
        stat("Cache hit ratio", fmt.pct(o.cache_hit_ratio)), stat("Cache size", fmt.bytes(o.cache_bytes) + " · " + fmt.n(o.cache_entries, 0)),
        stat("Store size", fmt.bytes(o.store_bytes)),
        stat("Disk free (kept free)", o.disk_free_bytes === null ? "–" : fmt.bytes(o.disk_free_bytes) + " (" + fmt.bytes(o.disk_reserve_bytes) + ")", "ov-disk")),
      h("div", { class: "card" }, h("h2", {}, "By route",
        h("span", { class: "muted" }, o.interval_seconds ? "  over the last " + fmt.n(o.interval_seconds) + " s" : "  (rates from the next refresh)")),
        table([{ t: "route" }, { t: "req/s", cls: "num" }, { t: "5xx/s", cls: "num" }, { t: "p99 ms", cls: "num" }, { t: "total", cls: "num hide-narrow" }],
          routes, "No requests served yet.")));
  }, 2000);
}

// ---- tenants

async function tenantNames() {
  const t = await call("GET", "/console/api/tenants");
  return t.tenants.map(x => x.name);
}

function tenants() {
  let prev = null, prevAt = 0;
  poll(async () => {
    const t = await call("GET", "/console/api/tenants");
    const now = Date.now(), secs = (now - prevAt) / 1000;
    const rows = t.tenants.map(x => {
      const before = prev && prev[x.name];
      const rate = before !== undefined && before !== null && x.requests_total !== null && secs > 0 ? (x.requests_total - before) / secs : null;
      return h("tr", {},
        h("td", {}, h("a", { href: "/console/documents?tenant=" + encodeURIComponent(x.name) }, x.name)),
        h("td", {}, h("span", { class: "pill" + (x.policy === "manual" ? " warn" : "") }, x.policy)),
        h("td", { class: "num" }, (x.docs_at_least ? "≥ " : "") + fmt.n(x.docs, 0)),
        h("td", { class: "num rate" }, rate === null ? "–" : fmt.n(rate)),
        h("td", { class: "num hide-narrow" }, fmt.n(x.requests_total, 0)));
    });
    prev = Object.fromEntries(t.tenants.map(x => [x.name, x.requests_total])); prevAt = now;
    const l = t.limits;
    setContent(
      h("div", { class: "card" }, table([{ t: "tenant" }, { t: "policy" }, { t: "documents", cls: "num" }, { t: "req/s", cls: "num" }, { t: "requests", cls: "num hide-narrow" }],
        rows, "No tenants yet: configure them with --tenant, or write to the demo tenant."),
        t.other_requests_total === undefined ? null : h("p", { class: "muted" }, "Requests of the tenants shown –: counted together (the node's tenant table keeps 1,024 rows), " +
          fmt.n(t.other_requests_total, 0) + " so far.")),
      h("div", { class: "card" }, h("h2", {}, "Limits (each tenant)"),
        h("dl", { class: "kv" },
          h("dt", {}, "requests/s"), h("dd", {}, fmt.n(l.tenant_rate) + " (bursts of " + fmt.n(l.tenant_burst, 0) + ")"),
          h("dt", {}, "in flight"), h("dd", {}, fmt.n(l.tenant_max_in_flight, 0) + " per tenant, " + fmt.n(l.max_in_flight, 0) + " on the node"))));
  }, 2000);
}

// ---- documents

// pickedTenant is the URL's tenant when the node has it, else the first
// (saying so: a page must not show one tenant's data under another's name).
// The warning stays in tenantWarning until another tenant is picked, for a
// page that clears the banner when it loads.
let tenantWarning = "";
function pickedTenant(names) {
  const t = params.get("tenant");
  if (t && !names.includes(t)) {
    tenantWarning = "No tenant “" + t + "” on this node: showing “" + names[0] + "”.";
    say(tenantWarning, "error");
  }
  return t && names.includes(t) ? t : names[0];
}

function tenantPicker(names, current, onchange) {
  const sel = h("select", { id: "tenant", name: "tenant", onchange: () => onchange(sel.value) },
    names.map(n => h("option", { value: n, selected: n === current }, n)));
  return h("div", {}, h("label", { for: "tenant" }, "Tenant"), sel);
}

async function documents() {
  const names = await tenantNames();
  if (!names.length) { setContent(h("div", { class: "card empty" }, "No tenants yet: there is nothing to browse.")); return; }
  const st = { tenant: pickedTenant(names), prefix: params.get("prefix") || "", after: params.get("after") || "", key: params.get("key") || "" };
  const back = [];
  const list = h("div", { class: "card" }), detail = h("div", { id: "doc" });
  const prefix = h("input", { id: "prefix", name: "prefix", value: st.prefix, placeholder: "key prefix" });
  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); st.prefix = prefix.value; st.after = ""; back.length = 0; load(); } },
    tenantPicker(names, st.tenant, v => { st.tenant = v; st.after = ""; st.key = ""; back.length = 0; tenantWarning = ""; load(); }),
    h("div", {}, h("label", { for: "prefix" }, "Prefix"), prefix),
    h("button", { type: "submit", class: "primary", id: "browse" }, "Browse"));
  setContent(h("div", { class: "card" }, form), list, detail);

  async function load() {
    keep({ tenant: st.tenant, prefix: st.prefix, after: st.after, key: st.key });
    try {
      const q = new URLSearchParams({ tenant: st.tenant, prefix: st.prefix, after: st.after });
      const d = await call("GET", "/console/api/docs?" + q);
      const rows = d.items.map(it => h("tr", { class: it.key === st.key ? "sel" : "" },
        h("td", {}, h("a", { href: "#", class: "doc-link mono", "data-key": it.key, onclick: (e) => { e.preventDefault(); st.key = it.key; load(); } }, fmt.key(it.key))),
        h("td", {}, it.conflict ? h("span", { class: "pill warn" }, "conflict") : ""),
        h("td", { class: "num" }, fmt.bytes(it.size)),
        h("td", { class: "mono hide-narrow" }, it.etag)));
      list.replaceChildren(
        table([{ t: "key" }, { t: "" }, { t: "size", cls: "num" }, { t: "etag", cls: "hide-narrow" }], rows,
          st.prefix ? "No documents under the prefix “" + st.prefix + "”." : "No documents in this tenant yet."),
        h("div", { class: "row" },
          h("button", { disabled: !back.length, onclick: () => { st.after = back.pop(); load(); } }, "← Previous"),
          h("button", { disabled: !d.next, onclick: () => { back.push(st.after); st.after = d.next; load(); } }, "Next →")));
      say(tenantWarning, "error");
    } catch (e) { list.replaceChildren(h("div", { class: "banner error" }, "Could not list: " + e.message)); }
    if (st.key) await showDoc(); else detail.replaceChildren();
  }

  async function showDoc() {
    try {
      const q = new URLSearchParams({ tenant: st.tenant, key: st.key });
      const d = await call("GET", "/console/api/doc?" + q);
      const vec = Object.entries(d.vector || {}).map(([k, v]) => k + ": " + v).join(", ");
      const hist = d.history.map(l => h("tr", {},
        h("td", { class: "mono" }, l.etag), h("td", {}, l.reason), h("td", { class: "mono hide-narrow" }, l.winner),
        h("td", { class: "hide-narrow" }, new Date(l.time).toISOString())));
      detail.replaceChildren(h("div", { class: "card" },
        h("h2", { class: "mono" }, fmt.key(d.key)),
        h("dl", { class: "kv" },
          h("dt", {}, "ETag"), h("dd", { class: "mono", id: "doc-etag" }, d.etag),
          h("dt", {}, "State"), h("dd", {}, d.deleted ? h("span", { class: "pill bad" }, "deleted") : d.siblings ? h("a", { href: "/console/conflicts?" + q }, h("span", { class: "pill warn" }, "open conflict")) : h("span", { class: "pill ok" }, "live")),
          h("dt", {}, "Version vector"), h("dd", { class: "mono" }, vec || "–"),
          h("dt", {}, "HLC"), h("dd", { class: "mono" }, d.hlc),
          h("dt", {}, "Writer"), h("dd", { class: "mono" }, d.writer)),
        d.body !== null ? h("pre", { id: "doc-body" }, fmt.json(d.body)) : null),
        h("div", { class: "card", id: "history" }, h("h2", {}, "Conflict history"),
          table([{ t: "discarded etag" }, { t: "reason" }, { t: "winner", cls: "hide-narrow" }, { t: "time", cls: "hide-narrow" }], hist, "No conflict of this document was ever resolved.")));
    } catch (e) { detail.replaceChildren(h("div", { class: "banner error" }, "Could not read “" + fmt.key(st.key) + "”: " + e.message)); }
  }
  load();
}

// ---- conflicts

// flatten maps a JSON value to its leaves by path: an object's members as
// JSON Pointer tokens ("~" as ~0, "/" as ~1, and "[" as ~2), an array's
// elements as [i], so that {"a/b":1} and {"a":{"b":1}}, or [5] and
// {"0":5}, never line up as one path.
function flatten(v, path, out) {
  if (v !== null && typeof v === "object" && Object.keys(v).length) {
    if (Array.isArray(v)) v.forEach((x, i) => flatten(x, path + "[" + i + "]", out));
    else for (const [k, x] of Object.entries(v)) flatten(x, path + "/" + k.replaceAll("~", "~0").replaceAll("/", "~1").replaceAll("[", "~2"), out);
  } else out.set(path || "/", JSON.stringify(v));
  return out;
}

// threeWay shows the common ancestor and, path by path, what each sibling
// did to it (the server's structural diff: added, removed, changed).
function threeWay(c) {
  const a = c.ancestor;
  const byPath = new Map();
  c.changes.forEach((cs, i) => cs.forEach(ch => {
    if (!byPath.has(ch.path)) byPath.set(ch.path, { from: ch.from, sibs: [] });
    byPath.get(ch.path).sibs[i] = ch;
  }));
  const show = v => v === undefined ? "(absent)" : JSON.stringify(v);
  const rows = [...byPath.keys()].sort().map(p => {
    const r = byPath.get(p);
    return h("tr", { class: "change" }, h("td", { class: "path" }, p || "(whole document)"),
      h("td", { class: "mono ancestor-value" }, show(r.from)),
      c.siblings.map((s, i) => {
        const ch = r.sibs[i];
        if (!ch) return h("td", { class: "mono same" }, "unchanged");
        return h("td", { class: "mono " + ch.op, "data-op": ch.op }, h("span", { class: "op" }, ch.op), " ", ch.op === "removed" ? "" : show(ch.to));
      }));
  });
  return h("div", { class: "card", id: "three-way" },
    h("h2", {}, "Changes since the common ancestor"),
    h("dl", { class: "kv" }, h("dt", {}, "Ancestor"), h("dd", { class: "mono", id: "ancestor-etag" }, a.etag),
      h("dt", {}, "Writer"), h("dd", { class: "mono" }, a.writer), h("dt", {}, "Time"), h("dd", {}, new Date(a.time).toISOString()),
      h("dt", {}, "Kept in"), h("dd", {}, a.source)),
    h("details", {}, h("summary", {}, "Ancestor's body"), h("pre", { id: "ancestor-body" }, fmt.json(a.body))),
    rows.length ? h("div", { class: "table-wrap diff" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "path"), h("th", {}, "ancestor"), c.siblings.map((s, i) => h("th", {}, "sibling " + (i + 1))))),
      h("tbody", {}, rows))) : h("div", { class: "empty" }, "No sibling changed the ancestor's content."));
}

// diffTable lines the siblings' leaves up by path and marks where they
// differ: the structural diff of the siblings against each other.
function diffTable(sibs) {
  const flat = sibs.map(s => s.deleted ? new Map() : flatten(s.body, "", new Map()));
  const paths = [...new Set(flat.flatMap(m => [...m.keys()]))].sort();
  const rows = paths.map(p => {
    const vals = flat.map(m => m.get(p));
    const same = vals.every(v => v === vals[0]);
    return h("tr", {}, h("td", { class: "path" }, p),
      vals.map(v => h("td", { class: "mono " + (v === undefined ? "absent" : same ? "same" : "changed") }, v === undefined ? "(absent)" : v)));
  }).sort((a, b) => (a.querySelector(".changed,.absent") ? 0 : 1) - (b.querySelector(".changed,.absent") ? 0 : 1));
  return h("div", { class: "table-wrap diff" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "path"), sibs.map((s, i) => h("th", {}, "sibling " + (i + 1))))),
    h("tbody", {}, rows)));
}

async function conflicts() {
  const names = await tenantNames();
  if (!names.length) { setContent(h("div", { class: "card empty" }, "No tenants yet: nothing can conflict.")); return; }
  const st = { tenant: pickedTenant(names), key: params.get("key") || "", after: params.get("after") || "" };
  const back = [];
  const list = h("div", { class: "card" }), detail = h("div", { id: "conflict" });
  setContent(h("div", { class: "card" }, h("div", { class: "row" }, tenantPicker(names, st.tenant, v => { st.tenant = v; st.key = ""; st.after = ""; back.length = 0; tenantWarning = ""; refresh(); }))), list, detail);

  // refresh lists the tenant's conflicts (and shows the one picked); a
  // listing that fails replaces what was shown, which belongs to the
  // tenant or page before, with the error.
  async function refresh() {
    keep({ tenant: st.tenant, key: st.key, after: st.after });
    let d;
    try { d = await call("GET", "/console/api/conflicts?" + new URLSearchParams({ tenant: st.tenant, after: st.after })); }
    catch (e) {
      list.replaceChildren(h("div", { class: "banner error", id: "conflicts-error" }, "Could not list conflicts: " + e.message));
      detail.replaceChildren();
      return;
    }
    const rows = d.items.map(c => h("tr", { class: c.key === st.key ? "sel" : "" },
      h("td", {}, h("a", { href: "#", class: "conflict-link mono", "data-key": c.key, onclick: (e) => { e.preventDefault(); st.key = c.key; refresh(); } }, fmt.key(c.key))),
      h("td", { class: "num" }, c.siblings.length),
      h("td", { class: "hide-narrow" }, c.siblings.map(s => new Date(s.time).toISOString()).join(", "))));
    list.replaceChildren(table([{ t: "key" }, { t: "siblings", cls: "num" }, { t: "written", cls: "hide-narrow" }], rows,
      "No open conflicts in this tenant. Conflicts are kept only under the manual policy (--conflict-policy " + st.tenant + "=manual)."),
      h("div", { class: "row" },
        h("button", { id: "conflicts-prev", disabled: !back.length, onclick: () => { st.after = back.pop(); refresh(); } }, "← Previous"),
        h("button", { id: "conflicts-next", disabled: !d.next, onclick: () => { back.push(st.after); st.after = d.next; refresh(); } }, "Next →")));
    if (st.key) await show(); else detail.replaceChildren();
  }

  async function show() {
    let c;
    try { c = await call("GET", "/console/api/conflict?" + new URLSearchParams({ tenant: st.tenant, key: st.key })); }
    catch (e) { detail.replaceChildren(h("div", { class: "banner " + (e.status === 404 ? "" : "error") }, e.status === 404 ? "“" + fmt.key(st.key) + "” has no open conflict (any more)." : e.message)); return; }
    const merged = h("textarea", { id: "merged", name: "merged" }, fmt.json(c.siblings.find(s => !s.deleted) ? c.siblings.find(s => !s.deleted).body : {}));
    const cards = c.siblings.map((s, i) => h("div", { class: "card sibling" },
      h("h2", {}, "Sibling " + (i + 1), " ", s.deleted ? h("span", { class: "pill bad" }, "delete") : ""),
      h("dl", { class: "kv" }, h("dt", {}, "ETag"), h("dd", { class: "mono" }, s.etag), h("dt", {}, "Writer"), h("dd", { class: "mono" }, s.writer),
        h("dt", {}, "Time"), h("dd", {}, new Date(s.time).toISOString())),
      s.deleted ? h("p", { class: "muted" }, "This side deleted the document.") : h("pre", {}, fmt.json(s.body)),
      h("div", { class: "row" }, h("button", { class: "primary choose", "data-etag": s.etag, onclick: () => resolve(c, { choose: s.etag }) }, "Keep sibling " + (i + 1)))));
    detail.replaceChildren(
      h("div", { class: "siblings" }, cards),
      c.ancestor ? threeWay(c) : h("div", { class: "card", id: "no-ancestor" }, h("h2", {}, "Differences"),
        h("p", { class: "muted" }, "No common ancestor known: the siblings are compared with each other."), diffTable(c.siblings)),
      h("div", { class: "card" }, h("h2", {}, "Resolve with a merged document"), merged,
        h("div", { class: "row" },
          h("button", { class: "primary", id: "save-merged", onclick: () => {
            let body; try { body = JSON.parse(merged.value); } catch (e) { say("The merged document is not JSON: " + e.message, "error"); return; }
            resolve(c, { body });
          } }, "Save merged document"),
          h("button", { class: "danger", id: "delete-doc", onclick: () => { if (confirm("Delete “" + fmt.key(c.key) + "” on every node?")) resolve(c, { delete: true }); } }, "Delete the document"))));
  }

  async function resolve(c, req) {
    try {
      const out = await call("POST", "/console/api/resolve?" + new URLSearchParams({ tenant: st.tenant, key: c.key }), req, { "If-Match": c.etag });
      say(out.deleted ? "Resolved “" + fmt.key(c.key) + "” by deleting it." : "Resolved “" + fmt.key(c.key) + "”: its ETag is now " + out.etag + ".", "ok");
      st.key = ""; await refresh();
    } catch (e) {
      say(e.status === 412 ? "The siblings changed since this page read them; look at them again." : "Could not resolve: " + e.message, "error");
      await refresh();
    }
  }
  await refresh();
}

// ---- replication

function replication() {
  async function run(q) {
    try {
      await call("POST", "/console/api/reconcile?" + new URLSearchParams(q));
      say("Round started" + (q.confirm ? ", with deletions confirmed" : "") + ".", "ok");
    } catch (e) { say("Could not start a round: " + e.message, "error"); }
  }
  const controls = h("div", { class: "card" }, h("div", { class: "row" },
    h("button", { class: "primary", id: "run-round", onclick: () => run({}) }, "Start a round on every backend"),
    h("button", { class: "danger", id: "run-confirm", onclick: () => { if (confirm("Confirm the deletions the mass-deletion guard holds back for EVERY tenant on EVERY backend, and start a round?\n\nTo confirm one tenant only: cairn reconcile run --confirm --tenant T [--backend B] (runbook 11).")) run({ confirm: "1" }); } }, "Confirm deletions and start")));
  const body = h("div", {});
  setContent(controls, body);
  poll(async () => {
    const r = await call("GET", "/console/api/replication");
    if (!r.configured) { controls.hidden = true; body.replaceChildren(h("div", { class: "card empty" }, "No backend is configured: start the node with --backend name=fs:/dir or an s3:// URL.")); return; }
    controls.hidden = false;
    const cards = r.status.backends.map(b => {
      const rows = b.tenants.map(t => {
        const l = t.last, pct = t.percent_done;
        return h("tr", { class: "tenant-progress", "data-backend": b.name, "data-tenant": t.tenant, "data-started": l ? l.started : "" },
          h("td", {}, t.tenant),
          h("td", {}, t.catching_up ? h("span", { class: "pill warn" }, t.running ? "catching up, running" : "catching up") : t.running ? h("span", { class: "pill ok round-running" }, "running") : h("span", { class: "pill" }, "idle"),
            t.held ? h("span", {}, " ", h("span", { class: "pill bad held" }, "deletions held"), " ",
              h("button", { class: "danger confirm-tenant", onclick: () => { if (confirm("Let the next round on " + b.name + " apply the deletions the mass-deletion guard holds back for tenant “" + t.tenant + "”? (runbook 11)")) run({ backend: b.name, tenant: t.tenant, confirm: "1" }); } }, "Confirm")) : ""),
          h("td", {}, t.running ? h("div", {}, h("div", { class: "bar" }, h("span", { style: null, "data-pct": pct })), h("span", { class: "muted" }, fmt.n(t.scanned, 0) + (t.estimate ? " of ~" + fmt.n(t.estimate, 0) : "") + " keys" + (t.eta_seconds !== undefined ? ", ETA " + fmt.dur(t.eta_seconds) : ""))) : "–"),
          h("td", { class: "mono last-round" }, l ? new Date(l.started).toISOString().replace("T", " ").slice(0, 19) + " UTC: scanned " + l.scanned + ", applied " + l.applied + ", conflicts " + l.conflicts + ", deletes " + l.deletes + ", corrupt " + l.corrupt : "none yet"),
          // Shown at every width: on a phone at 3 AM the error is what matters.
          h("td", { class: "last-error" }, t.last_error ? h("span", { class: "pill bad" }, t.last_error) : "",
            t.last_upload_error ? h("span", { class: "pill bad upload-error" }, "upload: " + t.last_upload_error) : ""));
      });
      const br = b.breaker === "closed" ? "ok" : b.breaker === "open" ? "bad" : "warn";
      return h("div", { class: "card backend" },
        h("div", { class: "row" }, h("h2", {}, b.name), h("span", { class: "pill " + br }, "breaker " + b.breaker),
          h("span", { class: "muted" }, "lag " + fmt.dur(b.lag_seconds)),
          h("button", { onclick: () => run({ backend: b.name }) }, "Start a round here")),
        table([{ t: "tenant" }, { t: "state" }, { t: "progress" }, { t: "last round" }, { t: "last error" }], rows, "No tenant has been reconciled with this backend yet."));
    });
    const q = r.quarantined.map(x => h("tr", {}, h("td", {}, x.backend), h("td", {}, x.tenant), h("td", { class: "mono" }, fmt.key(x.key)), h("td", {}, x.reason)));
    body.replaceChildren(...cards, h("div", { class: "card" }, h("h2", {}, "Quarantined objects"),
      table([{ t: "backend" }, { t: "tenant" }, { t: "key" }, { t: "reason" }], q, "Nothing quarantined: no damaged remote object was found."),
      r.quarantined_more ? h("p", { class: "muted quarantined-more" }, "Only the first " + q.length + " are listed; cairn reconcile quarantine lists them all.") : ""));
    // Widths are set from script, not inline style attributes, which the
    // Content-Security-Policy forbids.
    for (const s of body.querySelectorAll(".bar > span")) s.style.width = Math.min(100, Number(s.dataset.pct || 0)) + "%";
  }, 1000);
}

// ---- chaos

function chaos() {
  const body = h("div", {}), form = h("div", {});
  setContent(body, form);
  let built = false;
  poll(async () => {
    const c = await call("GET", "/console/api/chaos");
    if (!c.enabled) { body.replaceChildren(h("div", { class: "card empty" }, "Chaos is off: the node runs without --enable-chaos.")); return; }
    const names = Object.keys(c.status.backends).sort();
    const rows = names.map(n => {
      const b = c.status.backends[n];
      const inj = Object.entries(b.injected || {}).filter(([, v]) => v).map(([k, v]) => k + " " + v).join(", ");
      return h("tr", {}, h("td", {}, n), h("td", {}, h("pre", {}, fmt.json(b.profile))), h("td", { class: "mono" }, inj || "none"));
    });
    body.replaceChildren(h("div", { class: "card" }, h("p", { class: "muted" }, "Seed " + c.seed + (c.status.failpoints ? " · failpoints " + c.status.failpoints : "")),
      table([{ t: "backend" }, { t: "profile" }, { t: "injected" }], rows, "No backend is configured: chaos wraps backends.")));
    if (built || !names.length) return;
    built = true;
    if (!c.controllable) { form.replaceChildren(h("div", { class: "card banner" }, "Changing the profile needs an admin token: start the node with --admin-token-sha256.")); return; }
    const sel = h("select", { id: "chaos-backend" }, names.map(n => h("option", { value: n }, n)));
    const prof = h("textarea", { id: "chaos-profile" }, fmt.json(c.status.backends[names[0]].profile));
    sel.addEventListener("change", () => { prof.value = fmt.json(c.status.backends[sel.value].profile); });
    async function send(heal) {
      try {
        const q = new URLSearchParams({ backend: sel.value }); if (heal) q.set("heal", "1");
        await call("POST", "/console/api/chaos?" + q, heal ? undefined : prof.value);
        say(heal ? "Healed " + sel.value + "." : "Profile of " + sel.value + " set.", "ok");
      } catch (e) { say("Could not set the profile: " + e.message, "error"); }
    }
    form.replaceChildren(h("div", { class: "card" }, h("h2", {}, "Change a profile"),
      h("div", { class: "row" }, h("div", {}, h("label", { for: "chaos-backend" }, "Backend"), sel)), prof,
      h("div", { class: "row" }, h("button", { class: "primary", id: "chaos-apply", onclick: () => send(false) }, "Apply profile"),
        h("button", { id: "chaos-heal", onclick: () => send(true) }, "Heal"))));
  }, 2000);
}

const pages = { overview, tenants, documents, conflicts, replication, chaos };
(pages[app.dataset.page] || overview)();
