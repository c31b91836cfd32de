"use strict";
// The dashboard: everything through the REST API, live through the event stream.
// Content from the network is only ever set as text (never as HTML).

const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("dispersy-token", params.get("token"));
const TOKEN = sessionStorage.getItem("dispersy-token");
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = { node: null, communities: [], selected: null, feed: new Map(), history: [] };

function el(tag, attrs = {}, ...children) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.setAttribute("class", v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (TOKEN) headers["Authorization"] = "Bearer " + TOKEN;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({ error: "http", detail: r.statusText }));
  if (!r.ok) throw new Error(data.detail || data.error || r.statusText);
  return data;
}

const short = (hex) => (hex || "").slice(0, 8);
const community = () => state.communities.find((c) => c.id === state.selected);
function fmtBytes(n) {
  const u = ["B", "KiB", "MiB", "GiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function fmtDuration(s) {
  if (s < 120) return s + "s";
  if (s < 7200) return Math.floor(s / 60) + "m";
  return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
}

async function loadNode() {
  const n = await api("GET", "/api/v1/node");
  state.node = n;
  $("member").textContent = short(n.member);
  $("member").title = n.member;
  $("udp").textContent = n.listen.join(", ");
  $("wan").textContent = (n.wan || "unknown") + " (" + n.connection_type + ")";
  $("uptime").textContent = fmtDuration(n.uptime_secs);
  if (!$("perm-member").value && state.selected) {
    $("perm-member").value = n.member;
    showPermissions().catch(() => {});
  }
}

async function loadCommunities() {
  const list = (await api("GET", "/api/v1/communities")).communities;
  state.communities = list;
  if (!state.selected || !list.some((c) => c.id === state.selected)) {
    state.selected = list.length ? list[0].id : null;
    if (state.selected) selectCommunity(state.selected);
  }
  $("no-communities").hidden = list.length > 0;
  const ul = $("communities");
  ul.replaceChildren(...list.map((c) => el("li",
    { class: c.id === state.selected ? "selected" : "", "data-id": c.id, onclick: () => selectCommunity(c.id) },
    el("div", { class: "name" }, c.name, c.founder ? " \u2605" : ""),
    el("div", { class: "meta" }, short(c.id) + " \u00b7 " + c.messages + " messages \u00b7 " + c.candidates + " peers"),
    el("div", { class: "bar", title: "sync " + Math.round(c.sync.fraction * 100) + "%" },
      el("div", { style: "width:" + (c.sync.fraction * 100).toFixed(1) + "%" })))));
  renderSync();
}

function syncActivity(s) {
  if (s.catching_up) return ", catching up";
  if (s.reconciling) return ", reconciling";
  return "";
}

function renderSync() {
  $("sync").replaceChildren(...state.communities.map((c) => el("div", { "data-id": c.id },
    el("div", { class: "small" }, c.name + " " + short(c.id) + ": " + c.sync.held + " of " +
      c.sync.estimate + " (" + (c.sync.fraction * 100).toFixed(1) + "%" +
      (c.sync.estimated ? ", from " + c.sync.peers + " peers" : ", no estimate yet") +
      syncActivity(c.sync) + ")"),
    el("div", { class: "bar", title: "sync " + (c.sync.fraction * 100).toFixed(1) + "%" },
      el("div", { style: "width:" + (c.sync.fraction * 100).toFixed(1) + "%" })))));
}

async function selectCommunity(id) {
  state.selected = id;
  state.feed.clear();
  $("feed").replaceChildren();
  for (const li of $("communities").children) li.classList.toggle("selected", li.dataset.id === id);
  const c = await api("GET", "/api/v1/communities/" + id);
  $("community-title").textContent = c.name + " " + short(c.id);
  const app = c.metas.filter((m) => !m.builtin);
  const postable = app.filter((m) => m.distribution !== "direct");
  $("post-meta").replaceChildren(...postable.map((m) => el("option", { value: m.name }, m.name)));
  $("perm-meta").replaceChildren(...app.map((m) => el("option", { value: m.name }, m.name)));
  // The permissions panel starts with what this node's member may do.
  if (state.node && !$("perm-member").value) $("perm-member").value = state.node.member;
  if ($("perm-member").value) showPermissions().catch(() => {});
  const page = await api("GET", "/api/v1/communities/" + id + "/messages?order=desc&limit=100");
  for (const m of page.messages.reverse()) addMessage(m, false);
  await loadCandidates();
}

function addMessage(m, fresh) {
  if (m.community !== state.selected || !m.id || state.feed.has(m.id)) return;
  const li = el("li", { class: "msg" + (fresh ? " new" : "") + (m.undone ? " undone" : ""), "data-id": m.id },
    el("span", { class: "gt", title: "global time" }, "#" + m.global_time),
    el("span", { class: "who", title: m.member || "" }, short(m.member) + " " + m.meta),
    el("span", { class: "text" }, m.text !== null ? m.text : "base64:" + m.base64),
    el("button", { class: "undo", title: "undo this message (yours, or as a moderator)", onclick: () => undo(m) }, "undo"));
  state.feed.set(m.id, li);
  // Newest global time first.
  const feed = $("feed");
  const after = [...feed.children].find((x) => Number(x.querySelector(".gt").textContent.slice(1)) < m.global_time);
  feed.insertBefore(li, after || null);
  while (feed.children.length > 300) { state.feed.delete(feed.lastChild.dataset.id); feed.lastChild.remove(); }
}

async function undo(m) {
  const [member, gt] = m.id.split(":");
  try {
    await api("POST", "/api/v1/communities/" + m.community + "/undo", { member, global_time: Number(gt) });
  } catch (e) {
    $("post-error").textContent = "undo: " + e.message;
    $("post-error").hidden = false;
  }
}

const COLORS = { walk: "var(--walk)", stumble: "var(--stumble)", intro: "var(--intro)", discovered: "var(--discovered)", none: "var(--none)" };

async function loadCandidates() {
  if (!state.selected) return;
  const list = await api("GET", "/api/v1/communities/" + state.selected + "/candidates");
  $("candidate-counts").textContent = Object.entries(list.categories).map(([k, v]) => v + " " + k).join(", ");
  $("candidates").replaceChildren(...list.candidates.map((c) => el("tr", {},
    el("td", {}, el("code", {}, c.address)),
    el("td", { style: "color:" + (COLORS[c.category] || "inherit") }, c.category + (c.tracker ? " (tracker)" : "")),
    el("td", {}, el("code", { title: c.member || "" }, short(c.member))))));
  const g = $("graph");
  const n = list.candidates.length;
  const nodes = [el("svg:circle", { cx: 0, cy: 0, r: 9, fill: "var(--accent)" }), el("svg:text", { x: 0, y: 20 }, "this node")];
  list.candidates.forEach((c, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    const x = 78 * Math.cos(a), y = 78 * Math.sin(a);
    const color = COLORS[c.category] || "var(--dim)";
    nodes.unshift(el("svg:line", { x1: 0, y1: 0, x2: x, y2: y, stroke: color, "stroke-width": 1,
      "stroke-dasharray": c.category === "walk" || c.category === "stumble" ? "" : "3 3" }));
    nodes.push(el("svg:circle", { cx: x, cy: y, r: c.tracker ? 7 : 6, fill: color },
      el("svg:title", {}, c.address + " " + c.category)));
    nodes.push(el("svg:text", { x, y: y + 15 }, c.address.replace(/^127\.0\.0\.1:/, ":")));
  });
  g.replaceChildren(...nodes);
}

async function loadStats() {
  const [stats, history] = await Promise.all([api("GET", "/api/v1/stats"), api("GET", "/api/v1/stats/history")]);
  const s = stats.node;
  $("traffic-totals").textContent = "total in " + s.received.packets + " pkts / " + fmtBytes(s.received.bytes) +
    ", out " + s.sent.packets + " pkts / " + fmtBytes(s.sent.bytes);
  $("types").replaceChildren(...s.types.map((t) => el("tr", {},
    el("td", {}, t.name), el("td", {}, t.received.packets + " / " + fmtBytes(t.received.bytes)),
    el("td", {}, t.sent.packets + " / " + fmtBytes(t.sent.bytes)), el("td", {}, t.accepted))));
  const drops = Object.entries(s.drops);
  $("drops").textContent = drops.length ? "drops: " + drops.map(([k, v]) => k + " " + v).join(", ") : "no drops";
  drawTraffic(history);
}

function drawTraffic(h) {
  const pts = h.samples;
  const g = $("traffic");
  if (pts.length < 2) { g.replaceChildren(el("svg:text", { x: 300, y: 75, fill: "var(--dim)", "text-anchor": "middle", "font-size": 12 }, "collecting samples\u2026")); return; }
  const rate = (k) => pts.slice(1).map((p, i) => Math.max(0, (p[k].bytes - pts[i][k].bytes) / ((p.t - pts[i].t) / 1000 || 1)));
  const rin = rate("received"), rout = rate("sent");
  const max = Math.max(1, ...rin, ...rout);
  const line = (r) => r.map((v, i) => ((i / Math.max(r.length - 1, 1)) * 600).toFixed(1) + "," + (134 - (v / max) * 124).toFixed(1)).join(" ");
  g.replaceChildren(
    el("svg:polyline", { points: line(rin), fill: "none", stroke: "var(--good)", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }),
    el("svg:polyline", { points: line(rout), fill: "none", stroke: "var(--accent)", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }),
    el("svg:text", { x: 4, y: 12, fill: "var(--dim)", "font-size": 10 }, fmtBytes(Math.round(max)) + "/s"));
}

$("post-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("post-text").value;
  if (!text.trim() || !state.selected) return;
  $("post-error").hidden = true;
  try {
    const m = await api("POST", "/api/v1/communities/" + state.selected + "/messages", { meta: $("post-meta").value, payload: text });
    $("post-text").value = "";
    addMessage(m, true);
  } catch (e) {
    $("post-error").textContent = e.message;
    $("post-error").hidden = false;
  }
});

$("perm-form").addEventListener("click", async (ev) => {
  const action = ev.target.dataset && ev.target.dataset.action;
  if (!action || !state.selected) return;
  const member = $("perm-member").value.trim();
  const out = $("perm-result");
  const perms = [...$("perm-form").querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
  try {
    if (action === "show") {
      await showPermissions();
    } else {
      await api("POST", "/api/v1/communities/" + state.selected + "/" + action, { member, grants: [{ meta: $("perm-meta").value, permissions: perms }] });
      await showPermissions();
    }
  } catch (e) {
    out.replaceChildren(el("p", { class: "error" }, e.message));
  }
});

async function showPermissions() {
  const member = $("perm-member").value.trim();
  const p = await api("GET", "/api/v1/communities/" + state.selected + "/members/" + member + "/permissions");
  const yes = (b) => (b ? "\u2713" : "\u00b7");
  const who = p.master ? "the master" : (state.node && member === state.node.member ? "this node" : short(member));
  $("perm-result").replaceChildren(el("p", { class: "hint" }, who + " at global time " + p.global_time + ":"),
    el("table", {}, el("tr", {}, ...["type", "permit", "authorize", "revoke", "undo"].map((h) => el("th", {}, h))),
      ...p.permissions.map((x) => el("tr", {}, el("td", {}, x.meta), el("td", {}, yes(x.permit)), el("td", {}, yes(x.authorize)), el("td", {}, yes(x.revoke)), el("td", {}, yes(x.undo))))));
}

let candidatesTimer = null;
function connectEvents() {
  const url = "/api/v1/events" + (TOKEN ? "?token=" + encodeURIComponent(TOKEN) : "");
  const es = new EventSource(url);
  es.addEventListener("ready", () => $("live-dot").classList.add("live"));
  es.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    addMessage(m, true);
    const c = state.communities.find((x) => x.id === m.community);
    if (c) c.messages += 1;
  });
  es.addEventListener("undone", (e) => {
    const u = JSON.parse(e.data);
    const li = state.feed.get(u.id);
    if (li) li.classList.add("undone");
  });
  es.addEventListener("redone", (e) => {
    const li = state.feed.get(JSON.parse(e.data).id);
    if (li) li.classList.remove("undone");
  });
  es.addEventListener("peer", () => {
    clearTimeout(candidatesTimer);
    candidatesTimer = setTimeout(() => loadCandidates().catch(() => {}), 300);
  });
  es.addEventListener("lagged", () => selectCommunity(state.selected));
  es.onerror = () => $("live-dot").classList.remove("live");
}

async function tick() {
  try {
    await Promise.all([loadNode(), loadCommunities(), loadStats()]);
  } catch (e) {
    $("live-dot").classList.remove("live");
  }
}

tick();
connectEvents();
setInterval(tick, 5000);
setInterval(() => loadCandidates().catch(() => {}), 10000);
