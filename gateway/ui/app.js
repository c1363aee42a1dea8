// The operator dashboard: plain JavaScript, no build step, no third-party code.
// Everything shown comes from the operator API (/v1/operator/...), called with the operator key the user
// typed (kept in this tab's sessionStorage only). Live updates arrive on one server-sent event stream,
// read with fetch() so that it can carry the Authorization header.
"use strict";

const KEY_STORE = "gateway-operator-key";
const STATES = ["queued", "running", "action_required", "succeeded", "completed_with_issues", "failed",
  "cancelled", "unknown"];
const TERMINAL = new Set(["succeeded", "completed_with_issues", "failed", "cancelled"]);
const PAGE = 50;

const $ = (id) => document.getElementById(id);
const view = { jobs: new Map(), cursor: null, detailId: null, stream: null, providersTimer: null };

class AuthError extends Error {}

// -- DOM helpers: every value goes in as text, never as markup ---------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function badge(state) {
  return h("span", { class: `badge s-${state}`, dataset: { state } }, state.replaceAll("_", " "));
}

function bar(progress) {
  if (progress === null || progress === undefined) return h("span", { class: "muted" }, "–");
  const fill = h("span", { class: "fill" });
  fill.style.width = `${progress}%`;
  return h("span", { class: "progress", title: `${progress}%` }, h("span", { class: "track" }, fill), ` ${progress}%`);
}

function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < -1) {
    const ahead = -seconds;
    return h("time", { datetime: iso, title: date.toLocaleString() },
      ahead < 60 ? `in ${ahead} s` : ahead < 3600 ? `in ${Math.round(ahead / 60)} min` : date.toLocaleString());
  }
  const ago = seconds < 60 ? `${Math.max(seconds, 0)} s ago` : seconds < 3600 ? `${Math.round(seconds / 60)} min ago`
    : seconds < 86400 ? `${Math.round(seconds / 3600)} h ago` : date.toISOString().slice(0, 10);
  return h("time", { datetime: iso, title: date.toLocaleString() }, ago);
}

function show(section) {
  for (const id of ["login", "overview", "job"]) $(id).hidden = id !== section;
  $("signout").hidden = section === "login";
}

// -- the operator API ----------------------------------------------------------------------------------
function key() { return sessionStorage.getItem(KEY_STORE); }

async function api(path) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${key()}`, Accept: "application/json" } });
  if (resp.status === 401) throw new AuthError("the operator key was refused");
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error((body && (body.detail || body.title)) || `HTTP ${resp.status}`);
  return body;
}

// One server-sent event stream over fetch; calls onEvent(data) per event; resolves when the server ends it.
async function readStream(path, onEvent, signal) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${key()}`, Accept: "text/event-stream" }, signal });
  if (resp.status === 401) throw new AuthError("the operator key was refused");
  if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
  setLive(true);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
      if (data.length) onEvent(JSON.parse(data.join("\n")));
    }
  }
}

function setLive(on) {
  const live = $("live");
  live.classList.toggle("off", !on);
  live.textContent = on ? "live" : "reconnecting…";
}

// Keep the operator stream open for as long as the user is signed in, reconnecting with a growing pause.
async function follow() {
  const controller = new AbortController();
  view.stream = controller;
  let pause = 500;
  while (!controller.signal.aborted) {
    try {
      await readStream("/v1/operator/events", onJobEvent, controller.signal);
      pause = 500;
    } catch (err) {
      if (err instanceof AuthError) return signOut("The operator key was refused.");
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 8000);
    if (!controller.signal.aborted) refresh();  // catch up on what happened while the stream was down
  }
}

function onJobEvent(job) {
  if (view.detailId === job.id) loadDetail(job.id);
  if (!matches(job)) {
    if (view.jobs.has(job.id)) { view.jobs.delete(job.id); renderJobs(); }
    return;
  }
  view.jobs.set(job.id, job);
  renderJobs();
  scheduleProviders(300);
}

// -- overview: providers and jobs ---------------------------------------------------------------------------
function filters() {
  return { tenant: $("f-tenant").value.trim(), provider: $("f-provider").value, state: $("f-state").value };
}

function matches(job) {
  const f = filters();
  return (!f.tenant || job.tenant === f.tenant) && (!f.provider || job.provider === f.provider)
    && (!f.state || job.state === f.state);
}

async function loadJobs(more) {
  const query = new URLSearchParams({ limit: String(PAGE) });
  for (const [name, value] of Object.entries(filters())) if (value) query.set(name, value);
  if (more && view.cursor) query.set("cursor", view.cursor);
  const page = await api(`/v1/operator/jobs?${query}`);
  if (!more) view.jobs.clear();
  for (const job of page.data) view.jobs.set(job.id, job);
  view.cursor = page.next_cursor;
  renderJobs();
}

function renderJobs() {
  const jobs = [...view.jobs.values()].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
  $("jobs").replaceChildren(...jobs.map((job) => h("tr", { dataset: { jobId: job.id }, class: job.stale ? "stale" : "" },
    h("td", {}, h("a", { href: `#/jobs/${job.id}`, class: "mono" }, job.id)),
    h("td", {}, job.tenant),
    h("td", {}, job.provider),
    h("td", {}, badge(job.state), job.stale ? h("span", { class: "tag", title: "not confirmed by the vendor lately" }, "stale") : null),
    h("td", {}, job.stage || "–"),
    h("td", { class: "mono" }, job.vendor_status || "–"),
    h("td", {}, bar(job.progress)),
    h("td", { class: "num" }, job.version),
    h("td", {}, when(job.updated_at)))));
  $("jobs-empty").hidden = jobs.length > 0;
  $("more").hidden = !view.cursor;
}

let providersPending = null;
function scheduleProviders(ms) {
  if (providersPending) return;
  providersPending = setTimeout(() => { providersPending = null; loadProviders().catch(handle); }, ms);
}

async function loadProviders() {
  const { providers } = await api("/v1/operator/providers");
  const select = $("f-provider");
  if (select.options.length === 1) {
    for (const p of providers) select.append(h("option", { value: p.name }, p.name));
  }
  $("providers").replaceChildren(...providers.map(providerCard));
}

function providerCard(p) {
  const counts = STATES.filter((s) => p.jobs[s]).map((s) => h("li", {}, badge(s), h("span", { class: "num" }, p.jobs[s])));
  const lag = p.poll_lag_s === null ? "–" : `${p.poll_lag_s.toFixed(2)} s`;
  const breaker = p.breaker.state === "closed" ? "closed"
    : `${p.breaker.state.replace("_", "-")}${p.breaker.retry_in_s ? ` · retry in ${p.breaker.retry_in_s.toFixed(0)} s` : ""}`;
  return h("article", { class: "card provider", dataset: { provider: p.name } },
    h("header", {}, h("strong", {}, p.display_name), h("span", { class: "muted mono" }, p.name)),
    h("dl", {},
      h("dt", {}, "Circuit breaker"), h("dd", { class: `breaker b-${p.breaker.state}` }, breaker),
      h("dt", {}, "Failures in a row"), h("dd", {}, p.breaker.failures),
      h("dt", {}, "Poll lag (worst recent)"), h("dd", {}, lag),
      h("dt", {}, "Watching"), h("dd", {}, p.watching)),
    counts.length ? h("ul", { class: "counts" }, counts) : h("p", { class: "muted" }, "no jobs yet"),
    p.recent_errors.length
      ? h("details", { class: "errors" }, h("summary", {}, `${p.recent_errors.length} recent vendor errors`),
        h("ul", {}, p.recent_errors.slice(0, 5).map((e) => h("li", {}, when(e.at), " ", h("code", {}, e.error), " ", e.message))))
      : h("p", { class: "muted ok" }, "no recent vendor errors"));
}

// -- one job --------------------------------------------------------------------------------------------------
async function loadDetail(id) {
  const detail = await api(`/v1/operator/jobs/${encodeURIComponent(id)}`);
  if (view.detailId === id) $("job-body").replaceChildren(...renderDetail(detail));
}

function renderDetail({ job, transitions, result, deliveries }) {
  const facts = [
    ["Tenant", job.tenant], ["Provider", job.provider], ["Vendor status", job.vendor_status || "–"],
    ["Stage", job.stage || "–"], ["Progress", bar(job.progress)], ["Version", job.version],
    ["Created", when(job.created_at)], ["Updated", when(job.updated_at)], ["Finished", when(job.finished_at)],
    ["Checked", when(job.checked_at)], ["Vendor ref", h("code", {}, JSON.stringify(job.vendor_ref))],
  ];
  if (job.route) facts.push(["Route", `${job.route} (${job.attempts.map((a) => `${a.provider}: ${a.outcome}`).join(", ")})`]);
  if (job.error) facts.push(["Error", h("span", { class: "error" }, `${job.error.code}: ${job.error.message}`)]);
  if (job.action) facts.push(["Action", `${job.action.kind}${job.action.message ? `: ${job.action.message}` : ""}`]);
  return [
    h("h1", { class: "job-title" }, h("span", { class: "mono", id: "job-id" }, job.id), " ", badge(job.state),
      job.stale ? h("span", { class: "tag" }, "stale") : null),
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("h2", {}, "Timeline"),
    h("ol", { class: "timeline", id: "timeline" }, transitions.map((t) => h("li", { dataset: { version: t.version, state: t.state } },
      h("span", { class: "v" }, `v${t.version}`), h("time", { datetime: t.at }, new Date(t.at).toLocaleTimeString()),
      badge(t.state), t.stage ? h("span", {}, `stage ${t.stage}`) : null,
      t.vendor_status ? h("code", {}, t.vendor_status) : null, t.progress !== null ? bar(t.progress) : null))),
    h("h2", {}, "Issues"),
    job.issues.length
      ? h("ul", { class: "issues" }, job.issues.map((i) => h("li", {}, h("code", {}, i.code), i.target ? ` ${i.target}` : "",
        i.message ? ` — ${i.message}` : "", i.hint ? h("div", { class: "muted" }, i.hint) : null)))
      : h("p", { class: "muted" }, TERMINAL.has(job.state) ? "None." : "None so far."),
    h("h2", {}, "Result"),
    result ? renderResult(result) : h("p", { class: "muted" }, TERMINAL.has(job.state) ? "No result." : "Not finished yet."),
    h("h2", {}, "Webhook deliveries"),
    renderDeliveries(deliveries),
  ];
}

function tryText(a) {
  const what = a.status !== null ? `HTTP ${a.status}` : a.error;
  return `#${a.number} ${new Date(a.at).toLocaleTimeString()} ${what}${a.message ? ` (${a.message})` : ""}, ${a.duration_ms} ms`;
}

function renderDeliveries(log) {
  if (!log.webhook_url) return h("p", { class: "muted" }, "This job has no webhook.");
  const parts = [h("p", {}, "To ", h("code", {}, log.webhook_url),
    log.endpoint && log.endpoint.disabled
      ? h("span", { class: "tag" }, `endpoint disabled${log.endpoint.reason ? `: ${log.endpoint.reason}` : ""}`) : null)];
  if (!log.data.length) return h("div", {}, parts, h("p", { class: "muted" }, "No event yet."));
  parts.push(h("table", { class: "deliveries", id: "deliveries" },
    h("thead", {}, h("tr", {}, ["Event", "v", "State", "Tries", "Delivered / next try", "Last try"].map((t) => h("th", {}, t)))),
    h("tbody", {}, log.data.map((d) => {
      const last = d.attempts[d.attempts.length - 1];
      return h("tr", { dataset: { state: d.state } },
        h("td", { class: "mono" }, d.id), h("td", { class: "num" }, d.version),
        h("td", {}, h("span", { class: `tag d-${d.state}` }, d.state)),
        h("td", { class: "num" }, d.attempts.length),
        h("td", {}, d.delivered_at ? when(d.delivered_at) : d.failed_at ? `gave up ${d.failure || ""}` : when(d.next_attempt_at)),
        h("td", { class: last && last.error ? "error" : "" }, last ? tryText(last) : "–",
          d.attempts.length > 1 ? h("details", {}, h("summary", {}, "every try"),
            h("ol", {}, d.attempts.map((a) => h("li", {}, tryText(a))))) : null));
    }))));
  return h("div", {}, parts);
}

function renderResult(result) {
  const parts = [];
  if (result.outputs.length) {
    parts.push(h("table", { class: "outputs" },
      h("thead", {}, h("tr", {}, ["#", "Source", "Target", "Status", "Quality"].map((t) => h("th", {}, t)))),
      h("tbody", {}, result.outputs.map((o, i) => h("tr", {},
        h("td", { class: "mono" }, o.name ?? i), h("td", { class: "text" }, o.source ?? "–"), h("td", { class: "text" }, o.target ?? "–"),
        h("td", {}, o.status ?? "–"), h("td", { class: "num" }, o.quality ?? "–"))))));
  }
  if (result.artifact) parts.push(h("p", {}, "Output file: ", h("code", {}, result.artifact.filename || result.artifact.href),
    ` (${result.artifact.content_type || "unknown type"})`));
  if (result.usage) {
    const u = result.usage;
    parts.push(h("p", { class: "muted" }, `Usage: ${u.input_tokens ?? "–"} tokens in, ${u.output_tokens ?? "–"} out`
      + (u.cost ? `, ${u.cost.amount} ${u.cost.currency}` : "")));
  }
  return h("div", { class: "result" }, parts.length ? parts : h("p", { class: "muted" }, "An empty result."));
}

// -- navigation, sign-in --------------------------------------------------------------------------------------
function handle(err) {
  if (err instanceof AuthError) signOut("The operator key was refused.");
  else console.error(err);
}

async function route() {
  if (!key()) { show("login"); return; }
  const match = location.hash.match(/^#\/jobs\/(job_[0-9a-f]+)$/);
  if (match) {
    view.detailId = match[1];
    show("job");
    $("job-body").replaceChildren(h("p", { class: "muted" }, "Loading…"));
    await loadDetail(match[1]).catch((err) => {
      handle(err);
      if (!(err instanceof AuthError)) $("job-body").replaceChildren(h("p", { class: "error" }, err.message));
    });
  } else {
    view.detailId = null;
    show("overview");
  }
}

function refresh() {
  loadProviders().catch(handle);
  loadJobs(false).catch(handle);
  if (view.detailId) loadDetail(view.detailId).catch(handle);
}

async function signIn(candidate) {
  sessionStorage.setItem(KEY_STORE, candidate);
  try {
    await api("/v1/operator/providers");
  } catch (err) {
    sessionStorage.removeItem(KEY_STORE);
    throw err;
  }
  start();
}

function start() {
  refresh();
  clearInterval(view.providersTimer);
  view.providersTimer = setInterval(() => { if (!document.hidden) scheduleProviders(0); }, 5000);
  if (!view.stream) follow();
  route();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  if (view.stream) { view.stream.abort(); view.stream = null; }
  clearInterval(view.providersTimer);
  view.jobs.clear();
  $("jobs").replaceChildren();
  $("providers").replaceChildren();
  $("live").classList.add("off");
  $("live").textContent = "offline";
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
  show("login");
}

document.addEventListener("DOMContentLoaded", () => {
  for (const s of STATES) $("f-state").append(h("option", { value: s }, s.replaceAll("_", " ")));
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const candidate = $("key").value.trim();
    $("login-error").hidden = true;
    signIn(candidate).then(() => { $("key").value = ""; }).catch((err) => {
      const error = $("login-error");
      error.textContent = err instanceof AuthError ? "That is not an operator key." : `Cannot reach the gateway: ${err.message}`;
      error.hidden = false;
    });
  });
  $("signout").addEventListener("click", () => signOut());
  $("filters").addEventListener("change", () => loadJobs(false).catch(handle));
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); loadJobs(false).catch(handle); });
  $("more").addEventListener("click", () => loadJobs(true).catch(handle));
  window.addEventListener("hashchange", route);
  setInterval(() => { if (!document.hidden && !view.detailId) renderJobs(); }, 10000);  // keep "ago" times fresh
  if (key()) start(); else show("login");
});
