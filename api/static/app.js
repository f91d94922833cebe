/* icos-intelligence: the service's own page. Plain JavaScript, no build; charts by uPlot (vendored, MIT). */
"use strict";

const $ = (id) => document.getElementById(id);
const icos = (window.__icos = { firstChartMs: null, events: 0, renders: 0 });
const S = { signal: null, series: null, token: sessionStorage.getItem("icos-token") || "", who: null,
            units: {}, plot: null, chartData: null, anomalies: [], timer: null };
const EVENT_TYPES = ["recommendation.opened", "recommendation.changed", "action.enacted", "action.failed",
                     "anomaly.detected", "cluster.health.changed"].map((t) => "eu.icos.intelligence." + t);

// -- helpers -------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
async function api(path, opts = {}) {
  const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
  if (opts.auth && S.token) headers.Authorization = "Bearer " + S.token;
  if (opts.body) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method: opts.method || "GET", headers, body: opts.body ? JSON.stringify(opts.body) : undefined });
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) { const err = new Error((body && typeof body.detail === "string") ? body.detail : `HTTP ${r.status}`); err.status = r.status; throw err; }
  return body;
}
const utc = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "").replace(/\+00:00$/, "") : "");
const hm = (iso) => utc(iso).slice(5, 16);
function fmt(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  let s;
  if (unit === "bytes") {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; let x = Math.abs(v);
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (v < 0 ? "-" : "") + x.toFixed(x < 10 ? 2 : 1) + " " + u[i];
  }
  const a = Math.abs(v);
  s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}
const seriesName = (s) => `${s.labels.namespace || ""}/${s.labels.workload || ""}`;

// -- header, clusters, models --------------------------------------------------------------------

async function loadHeader() {
  const [h, a] = await Promise.all([api("/healthz"), api("/v1/actuator").catch(() => null)]);
  const st = $("status"); st.textContent = h.status; st.className = "pill " + h.status;
  const tb = $("timebasis");
  tb.hidden = h.time_basis === "real";
  tb.textContent = h.time_basis === "simulated" ? "simulated time" : h.time_basis + " time";
  tb.title = h.time_basis === "simulated" ? "The embedded continuum: its clock runs faster than real time" : "Replayed from a file";
  $("clock").textContent = h.engine.last_step_at ? utc(h.engine.last_step_at) + " UTC" : "";
  $("mode").textContent = "mode: " + h.mode;
  if (a) { $("kill").hidden = !a.kill_switch; $("kill").title = a.kill_switch_reason || "Nothing is enacted"; }
  return h;
}

async function loadClusters() {
  const cs = await api("/v1/clusters");
  const ul = $("clusters"); ul.replaceChildren();
  for (const c of cs) {
    const meta = [`${c.series} series`, c.capacity_cores ? `${c.capacity_cores} cores` : null,
                  c.last_success ? "last pull " + hm(c.last_success) : null].filter(Boolean).join(" · ");
    ul.append(el("li", { "data-cluster": c.cluster },
      el("span", { class: "dot " + c.state, title: c.state }),
      el("b", { text: c.cluster }), el("span", { class: "tier", text: `${c.tier} · ${c.state}` }),
      el("span", { class: "meta", text: meta + (c.last_error ? " — " + c.last_error : "") })));
  }
}

async function loadModels() {
  const rows = await api("/v1/models/accuracy");
  const tb = $("models"); tb.replaceChildren();
  for (const m of rows) {
    S.units[m.signal] = m.unit;
    const ch = m.champion.relative_mae, cl = m.challenger ? m.challenger.relative_mae : null;
    const better = cl !== null && ch !== null && cl < ch;
    tb.append(el("tr", {},
      el("td", { text: m.signal, title: m.unit }), el("td", { text: m.champion_version ? "v" + m.champion_version : "–" }),
      el("td", { text: ch === null ? "–" : ch.toFixed(3) }),
      el("td", { class: better ? "better" : "", text: cl === null ? "–" : cl.toFixed(3) }),
      el("td", { text: m.champion.coverage === null ? "–" : (100 * m.champion.coverage).toFixed(0) + "%" })));
  }
  if (!rows.length) tb.append(el("tr", {}, el("td", { colspan: 5, class: "empty", text: "no model has scored yet" })));
}

// -- workloads and the chart ---------------------------------------------------------------------

async function loadWorkloads() {
  const [fcs, scores] = await Promise.all([
    api(`/v1/forecasts?signal=${encodeURIComponent(S.signal)}&limit=1000`),
    api(`/v1/anomalies/latest?signal=${encodeURIComponent(S.signal)}&limit=1000`),
  ]);
  const score = Object.fromEntries(scores.map((s) => [s.series.id, s.score]));
  const ul = $("workloads"); ul.replaceChildren();
  for (const f of fcs) {
    const sc = score[f.series.id] || 0;
    const li = el("li", { "data-id": f.series.id, class: f.series.id === S.series?.id ? "sel" : "", onclick: () => select(f.series) },
      el("span", { class: "name", title: f.series.id, text: seriesName(f.series) }),
      el("span", { class: "val", text: fmt(f.points[0]?.value, f.unit), title: "forecast, one step ahead" }),
      el("span", { class: "score " + (sc >= 0.9 ? "hi" : sc >= 0.55 ? "mid" : ""), title: "anomaly score " + sc.toFixed(2) }),
      el("span", { class: "where", text: f.series.cluster }));
    ul.append(li);
  }
  if (!fcs.length) ul.append(el("li", { class: "empty", text: "no forecast yet" }));
  if (!S.series && fcs.length) {
    // first the workload with the most anomaly events, so that the first chart has something to show
    const events = await api(`/v1/anomalies?signal=${encodeURIComponent(S.signal)}&limit=1000`).catch(() => []);
    const n = {}; for (const a of events) n[a.series.id] = (n[a.series.id] || 0) + 1;
    const best = fcs.slice().sort((a, b) => (n[b.series.id] || 0) - (n[a.series.id] || 0))[0];
    await select(best.series);
  }
}

async function select(series) {
  S.series = series;
  for (const li of $("workloads").children) li.classList.toggle("sel", li.dataset.id === series.id);
  await loadChart();
}

function seriesQuery(s) {
  const q = new URLSearchParams({ cluster: s.cluster, signal: s.signal });
  for (const k of ["namespace", "workload"]) if (s.labels[k] !== undefined) q.set(k, s.labels[k]);
  return q;
}

async function loadChart() {
  const s = S.series; if (!s) return;
  const q = seriesQuery(s);
  const [hist, fcs, anoms] = await Promise.all([
    api(`/v1/forecasts/history?${q}&limit=1`),
    api(`/v1/forecasts?${q}&limit=1`),
    api(`/v1/anomalies?cluster=${encodeURIComponent(s.cluster)}&signal=${encodeURIComponent(s.signal)}&limit=1000`),
  ]);
  if (S.series !== s) return;  // another workload was chosen meanwhile
  const h = hist[0], f = fcs[0];
  const unit = (h && h.unit) || (f && f.unit) || "";
  const mine = anoms.filter((a) => a.series.id === s.id);
  S.anomalies = mine;
  const xs = new Map();  // time (s) -> row
  const row = (t) => { if (!xs.has(t)) xs.set(t, { actual: null, fc: null, lo: null, hi: null, surge: null, anom: null }); return xs.get(t); };
  if (h) {
    const one = h.forecasts.find((x) => x.horizon === 1) || h.forecasts[0];
    h.timestamps.forEach((iso, i) => {
      const r = row(Date.parse(iso) / 1000);
      r.actual = h.actual[i];
      if (one) { r.fc = one.value[i]; r.lo = one.lower[i]; r.hi = one.upper[i]; }
    });
    const acc = h.forecasts.map((x) => `${x.horizon} step${x.horizon > 1 ? "s" : ""} ahead: MAE <b>${fmt(x.mae, unit)}</b>, ` +
      `${x.coverage === null ? "–" : (100 * x.coverage).toFixed(0) + "%"} inside the band (${x.scored} samples)`);
    $("accuracy").innerHTML = acc.length ? "Over this range — " + acc.join(" · ") : "";
  }
  let origin = null;
  if (f) {
    origin = Date.parse(f.origin) / 1000;
    for (const p of f.points) {
      const r = row(Date.parse(p.timestamp) / 1000);
      r.fc = p.value; r.lo = p.lower; r.hi = p.upper; r.surge = p.surge;
    }
  }
  const first = xs.size ? Math.min(...xs.keys()) : 0;
  for (const a of mine) {
    const t = Date.parse(a.timestamp) / 1000;
    if (t >= first) row(t).anom = a.observed;
  }
  const times = [...xs.keys()].sort((a, b) => a - b);
  const col = (k) => times.map((t) => xs.get(t)[k]);
  const data = [times, col("actual"), col("fc"), col("lo"), col("hi"), col("surge"), col("anom")];
  S.chartData = { data, unit, origin, times };
  $("charttitle").textContent = `${seriesName(s)} — ${s.signal}`;
  $("chartsub").textContent = `${s.cluster} · unit: ${unit || "none"} · ${mine.length} anomal${mine.length === 1 ? "y" : "ies"} in range`;
  draw();
  renderAnomalies(mine, unit);
}

function nowLine(u) {
  const o = S.chartData && S.chartData.origin; if (o === null || o === undefined) return;
  const x = Math.round(u.valToPos(o, "x", true));
  const ctx = u.ctx; ctx.save(); ctx.strokeStyle = "#8795a8"; ctx.setLineDash([3, 3]); ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
  ctx.fillStyle = "#5d6b7e"; ctx.font = "11px system-ui"; ctx.fillText("now", x + 4, u.bbox.top + 12); ctx.restore();
}

function draw() {
  const box = $("chart");
  const { data, unit } = S.chartData;
  const width = Math.max(320, box.clientWidth);
  const css = getComputedStyle(document.documentElement);
  const c = (n) => css.getPropertyValue(n).trim();
  const opts = {
    width, height: 340,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    legend: { show: false },
    cursor: { points: { size: 6 } },
    scales: { x: { time: true } },
    axes: [{ stroke: "#5d6b7e", grid: { stroke: "#eef1f5" } },
           { stroke: "#5d6b7e", grid: { stroke: "#eef1f5" }, size: 70, label: unit, values: (u, vs) => vs.map((v) => fmt(v, unit === "bytes" ? "bytes" : "")) }],
    series: [
      {},
      { label: "actual", stroke: c("--actual"), width: 1.6 },
      { label: "forecast", stroke: c("--fc"), width: 1.6 },
      { label: "lower", stroke: "rgba(11,92,173,.35)", width: 1 },
      { label: "upper", stroke: "rgba(11,92,173,.35)", width: 1 },
      { label: "surge", stroke: c("--surge"), width: 1.6, dash: [6, 4] },
      { label: "anomaly", stroke: c("--anom"), paths: () => null, points: { show: true, size: 9, fill: c("--anom"), stroke: "#fff", width: 1.5 } },
    ],
    bands: [{ series: [4, 3], fill: c("--band") }],
    hooks: { draw: [nowLine], setCursor: [hover] },
  };
  if (S.plot) S.plot.destroy();
  box.replaceChildren();
  S.plot = new uPlot(opts, data, box);
  icos.renders++;
  if (icos.firstChartMs === null && data[0].length) { icos.firstChartMs = performance.now(); box.dataset.ready = "1"; }
}

function hover(u) {
  const i = u.cursor.idx; const out = $("hover");
  if (i === null || i === undefined) { out.textContent = "Hover the chart for values; anomalies show their reason."; return; }
  const { data, unit } = S.chartData; const t = data[0][i];
  const parts = [new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC",
                 "actual " + fmt(data[1][i], unit), "forecast " + fmt(data[2][i], unit)];
  if (data[3][i] !== null) parts.push(`band ${fmt(data[3][i], unit)} – ${fmt(data[4][i], unit)}`);
  if (data[5][i] !== null) parts.push("surge " + fmt(data[5][i], unit));
  const a = S.anomalies.find((x) => Date.parse(x.timestamp) / 1000 === t);
  out.replaceChildren(el("span", { text: parts.join(" · ") }));
  if (a) out.append(el("div", { class: "err", text: `anomaly ${a.score.toFixed(2)} (${a.model}): ${a.detail}` }));
}

function renderAnomalies(list, unit) {
  const ul = $("anomalies"); ul.replaceChildren();
  for (const a of list.slice(0, 30)) {
    const reason = a.detail || `seen ${fmt(a.observed, unit)}, expected ${fmt(a.expected, unit)} (${fmt(a.lower, unit)} – ${fmt(a.upper, unit)})`;
    ul.append(el("li", {}, el("span", { class: "sc", text: a.score.toFixed(2) }), el("span", { class: "muted", text: utc(a.timestamp) }),
      el("span", { text: reason, title: `model ${a.model}` })));
  }
  if (!list.length) ul.append(el("li", { class: "empty", text: "none in the events kept" }));
}

// -- recommendations, actions, audit, events -----------------------------------------------------

function recCard(r) {
  const e = r.explanation;
  const params = Object.entries(r.params).map(([k, v]) => `${k} = ${v}`).join(", ");
  const li = el("li", { "data-rec": r.id },
    el("div", { class: "head" }, el("span", { class: "kind", text: `${r.kind} · ${params}` }),
      el("span", { class: "state " + r.status, "data-state": r.status, text: r.status })),
    el("div", { class: "target", text: `#${r.id} · ${r.target.cluster}/${r.target.namespace}/${r.target.workload} · confidence ${(100 * r.confidence).toFixed(0)}%` }),
    el("div", { class: "sum", text: e.summary }),
    el("div", { class: "why", text: [e.rule, e.expected_effect].filter(Boolean).join(" — ") }));
  if (e.rejected && e.rejected.length) li.append(el("div", { class: "why", text: "not chosen: " + e.rejected.join("; ") }));
  if (S.who && (r.status === "open" || r.status === "approved")) {
    const msg = el("span", { class: "small err" });
    const act = async (what, btn) => {
      btn.disabled = true;
      try { const done = await api(`/v1/recommendations/${r.id}/${what}`, { method: "POST", auth: true, body: {} }); li.replaceWith(recCard(done)); }
      catch (err) { msg.textContent = err.message; btn.disabled = false; }
    };
    const acts = el("div", { class: "acts" });
    if (r.status === "open") acts.append(el("button", { class: "btn approve", type: "button", onclick: (ev) => act("approve", ev.target), text: "Approve" }));
    acts.append(el("button", { class: "btn reject", type: "button", onclick: (ev) => act("reject", ev.target), text: "Reject" }), msg);
    li.append(acts);
  }
  return li;
}

async function loadRecs() {
  const [open, approved] = await Promise.all([api("/v1/recommendations?status=open&limit=50"), api("/v1/recommendations?status=approved&limit=20")]);
  const all = [...approved, ...open];
  const ul = $("recs"); ul.replaceChildren(...all.map(recCard));
  if (!all.length) ul.append(el("li", { class: "empty", text: "nothing to decide" }));
  $("reccount").textContent = open.length;
}

async function loadActions() {
  const rows = await api("/v1/actuator/actions?limit=30");
  const ul = $("tab-actions"); ul.replaceChildren(...rows.map((a) => el("li", {}, el("span", { class: "t", text: hm(a.updated_at) }),
    el("span", {}, el("span", { class: "ty", text: `${a.state} ` }), `${a.lever} ${JSON.stringify(a.params)} on ${a.target} (recommendation #${a.recommendation_id}, ${a.attempts} attempt${a.attempts > 1 ? "s" : ""})`))));
  if (!rows.length) ul.append(el("li", { class: "empty", text: "nothing enacted" }));
}

async function loadAudit() {
  const rows = await api("/v1/actuator/audit?limit=40");
  const ul = $("tab-audit"); ul.replaceChildren(...rows.map((a) => {
    const d = a.detail || {}; const who = d.by ? ` by ${d.by}` : "";
    const what = d.summary || d.reason || d.target || "";
    return el("li", {}, el("span", { class: "t", text: hm(a.at) }),
      el("span", {}, el("span", { class: "ty", text: a.event + who }), a.recommendation_id ? ` #${a.recommendation_id} ` : " ", String(what)));
  }));
}

function describeEvent(ce) {
  const d = ce.data || {}; const short = ce.type.replace("eu.icos.intelligence.", "");
  if (short.startsWith("recommendation")) return [short, `#${d.id} ${d.status} · ${d.cluster}/${d.namespace}/${d.workload}`];
  if (short.startsWith("action")) return [short, `${d.lever} on ${d.cluster}/${d.namespace}/${d.workload} · ${d.state}`];
  if (short.startsWith("anomaly")) return [short, `${(d.score || 0).toFixed(2)} on ${d.series}: ${d.detail || ""}`];
  if (short.startsWith("cluster")) return [short, `${d.cluster}: ${d.previous || "?"} → ${d.state}`];
  return [short, ce.subject];
}

function addEvent(ce, fresh) {
  const [ty, text] = describeEvent(ce);
  const li = el("li", { class: fresh ? "new" : "", "data-event": ce.id, "data-type": ce.type },
    el("span", { class: "t", text: hm(ce.time) }), el("span", {}, el("span", { class: "ty", text: ty + " " }), text));
  const ul = $("tab-events"); ul.prepend(li);
  while (ul.children.length > 200) ul.lastChild.remove();
}

let pending = new Set(); let flushTimer = null;
function refreshSoon(...what) {
  what.forEach((w) => pending.add(w));
  if (flushTimer) return;
  flushTimer = setTimeout(async () => {
    const todo = pending; pending = new Set(); flushTimer = null;
    const jobs = [];
    if (todo.has("recs")) jobs.push(loadRecs(), loadAudit());
    if (todo.has("actions")) jobs.push(loadActions());
    if (todo.has("clusters")) jobs.push(loadClusters(), loadHeader());
    if (todo.has("chart")) jobs.push(loadChart());
    await Promise.allSettled(jobs);
  }, 300);
}

async function startEvents() {
  const recent = await api("/v1/events?limit=1000").catch(() => []);
  let after = 0;
  for (const ce of recent.slice(-40)) addEvent(ce, false);
  for (const ce of recent) after = Math.max(after, ce.icosseq);
  const live = $("live");
  const es = new EventSource(`/v1/events?after=${after}`);
  es.onopen = () => { live.classList.add("on"); live.querySelector("b").textContent = "live"; };
  es.onerror = () => { live.classList.remove("on"); live.querySelector("b").textContent = "reconnecting"; };
  const on = (ev) => {
    const ce = JSON.parse(ev.data); icos.events++; addEvent(ce, true);
    if (ce.type.includes(".recommendation.")) refreshSoon("recs");
    else if (ce.type.includes(".action.")) refreshSoon("actions", "recs");
    else if (ce.type.includes(".cluster.")) refreshSoon("clusters");
    else if (ce.type.includes(".anomaly.") && S.series && ce.data.series === S.series.id) refreshSoon("chart");
  };
  for (const t of EVENT_TYPES) es.addEventListener(t, on);
}

// -- signing in ----------------------------------------------------------------------------------

async function whoami() {
  if (!S.token) { S.who = null; } else {
    try { S.who = (await api("/v1/whoami", { auth: true })).name; }
    catch (err) { if (err.status === 401 || err.status === 403) { S.token = ""; sessionStorage.removeItem("icos-token"); } S.who = null; throw err; }
  }
  $("who").textContent = S.who ? "signed in as " + S.who : "";
  $("signin").textContent = S.who ? "Sign out" : "Sign in";
}

function setupSignin() {
  const box = $("tokenbox");
  $("signin").addEventListener("click", async () => {
    if (S.who) { S.token = ""; sessionStorage.removeItem("icos-token"); await whoami(); loadRecs(); return; }
    $("tokenerr").hidden = true; $("token").value = ""; box.showModal();
  });
  $("tokencancel").addEventListener("click", () => box.close());
  $("tokenform").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    S.token = $("token").value.trim();
    try { await whoami(); sessionStorage.setItem("icos-token", S.token); box.close(); loadRecs(); }
    catch (err) { $("tokenerr").textContent = err.status === 403 ? "This service has no tokens configured." : "Not accepted: " + err.message; $("tokenerr").hidden = false; }
  });
}

// -- start ---------------------------------------------------------------------------------------

async function main() {
  setupSignin();
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll(".tabs button").forEach((x) => x.classList.toggle("on", x === b));
    document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== "tab-" + b.dataset.tab; });
  }));
  const health = await loadHeader();
  const signals = [...new Set((await api("/v1/models/accuracy")).map((m) => m.signal))];
  const pick = $("signal");
  for (const s of signals) pick.append(el("option", { value: s, text: s }));
  S.signal = signals.includes("requests") ? "requests" : signals[0];
  if (S.signal) pick.value = S.signal;
  pick.addEventListener("change", () => { S.signal = pick.value; S.series = null; loadWorkloads(); });
  await Promise.allSettled([S.signal ? loadWorkloads() : Promise.resolve(), loadClusters(), loadModels(),
    whoami().catch(() => null).then(loadRecs), loadActions(), loadAudit(), startEvents()]);
  window.addEventListener("resize", () => { if (S.chartData) draw(); });
  // forecasts change at every engine step, which is no event: refresh the numbers every few seconds
  S.timer = setInterval(() => { Promise.allSettled([loadHeader(), loadChart(), loadModels()]); }, health.time_basis === "simulated" ? 5000 : 15000);
}

main().catch((err) => { $("status").textContent = "error"; $("status").className = "pill degraded"; $("status").title = err.message; });
