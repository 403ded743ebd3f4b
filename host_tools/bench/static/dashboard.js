// The bench dashboard: the admin API (fetch, Authorization: Bearer) and the
// admin side of the JSON WebSocket protocol on /ws (subscribe, broadcasts,
// commands), docs/protocols/json-websocket.md. No framework, no build step.
//
// Everything shown comes from devices, and a device id or a payload is
// hostile input: text goes into the page only as textContent or attribute
// values, never as HTML, and the page's Content-Security-Policy runs no
// inline script. The admin token lives in this tab's sessionStorage and
// travels in a header or in the subscribe message, never in a URL.
"use strict";

const TOKEN_KEY = "doorlink.admin-token";
const KEEP = { punches: 20, decisions: 20, events: 40, temps: 120 };
const SHOWN_CHARS = 300;           // of one payload in a table cell
const RECONNECT_MAX_S = 30;
const SVG = "http://www.w3.org/2000/svg";
const DECISIONS = new Set(["unlocked", "access_denied"]);
const ALARM_EVENTS = { door_forced: "forced", door_held_open: "held_open", door_tamper: "tamper" };

const state = {
  token: null,          // null: anonymous (a loopback bench that lets admins in without one)
  ws: null,
  wantLink: false,      // false once logged out: no reconnecting
  retryS: 1,
  devices: new Map(),   // device id -> device (see device())
  selected: null,
  pending: new Map(),   // command id -> {device, what}
  nextCommand: 0,
  session: Math.random().toString(16).slice(2, 10),
};

const $ = (id) => document.getElementById(id);

// -- building the page from text only ------------------------------------------------
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "className") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, String(v));
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function shown(value) {
  let text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) text = "";
  return text.length > SHOWN_CHARS ? text.slice(0, SHOWN_CHARS) + "…" : text;
}

function clock(epochS) {
  const t = Number(epochS);
  return Number.isFinite(t) ? new Date(t * 1000).toLocaleTimeString() : "";
}

function prepend(tbody, row, keep) {
  tbody.prepend(row);
  while (tbody.rows.length > keep) tbody.deleteRow(-1);
}

// -- devices -------------------------------------------------------------------------------
function device(id) {
  let d = state.devices.get(id);
  if (!d) {
    d = { id, online: false, doors: new Map(), temps: [], humidity: null, punches: [], decisions: [],
          events: [], loaded: false, item: null };
    state.devices.set(id, d);
    d.item = el("li", { dataset: { device: id }, tabindex: "0" },
                el("span", { className: "name" }, id), el("span", { className: "badge off state" }, "offline"));
    d.item.addEventListener("click", () => select(id));
    d.item.addEventListener("keydown", (e) => { if (e.key === "Enter") select(id); });
    const list = $("devices");
    const after = [...list.children].find((li) => li.dataset.device > id);
    list.insertBefore(d.item, after || null);
    if (state.selected === null) select(id);
  }
  return d;
}

function door(d, name) {
  const key = typeof name === "string" && name ? name : "front";
  let dr = d.doors.get(key);
  if (!dr) {
    dr = { name: key, lock: "?", position: "?", mode: "?", alarms: new Set() };
    d.doors.set(key, dr);
  }
  return dr;
}

function setOnline(d, online) {
  d.online = online;
  const badge = d.item.querySelector(".state");
  badge.textContent = online ? "online" : "offline";
  badge.className = "badge state " + (online ? "on" : "off");
  if (online) {
    askStatus(d);
    loadHistory(d);
  }
  if (d.id === state.selected) renderDevice();
}

function select(id) {
  state.selected = id;
  for (const li of $("devices").children) li.classList.toggle("selected", li.dataset.device === id);
  $("screen").hidden = true;
  $("control-reply").textContent = "";
  $("control-status").textContent = "";
  $("command-reply").textContent = "";
  renderDevice();
}

// -- what the bench says ------------------------------------------------------------------
function onMessage(msg) {
  if (!msg || typeof msg !== "object") return;
  if (msg.type === "device_status" && typeof msg.device_id === "string") {
    setOnline(device(msg.device_id), msg.status === "online");
  } else if (msg.type === "telemetry" && typeof msg.device_id === "string") {
    telemetry(device(msg.device_id), msg.payload, msg.received_at);
  } else if (msg.type === "event" && typeof msg.device_id === "string") {
    event(device(msg.device_id), msg.event_type, msg.payload, msg.received_at);
  } else if (msg.type === "error") {
    $("command-reply").textContent = "bench: " + shown(msg.message);
  }
}

function telemetry(d, payload, at) {
  if (!payload || typeof payload !== "object") return;
  const t = Number(payload.temperature);
  if (payload.temperature !== null && payload.temperature !== undefined && Number.isFinite(t)) {
    d.temps.push([Number(at) || Date.now() / 1000, t]);
    if (d.temps.length > KEEP.temps) d.temps.shift();
  }
  const h = Number(payload.humidity);
  if (payload.humidity !== null && payload.humidity !== undefined && Number.isFinite(h)) d.humidity = h;
  if (d.id === state.selected) renderClimate(d);
}

function keep(list, item, max) {
  list.unshift(item);
  if (list.length > max) list.pop();
}

// `live` false for a stored event loaded as history: the door's state then
// comes from the device's own answer to `status`, not from old news.
function event(d, type, payload, at, live = true) {
  if (typeof type !== "string") return;
  const p = payload && typeof payload === "object" ? payload : {};
  if (type === "command_result") return commandResult(d, p, at);
  const dr = live && p.door !== undefined ? door(d, p.door) : null;
  if (type === "unlocked" && dr) dr.lock = "unlocked";
  else if (type === "locked" && dr) dr.lock = "locked";
  else if (type === "door_opened" && dr) dr.position = "open";
  else if (type === "door_closed" && dr) { dr.position = "closed"; dr.alarms.delete("held_open"); }
  else if (type === "door_mode" && dr && typeof p.mode === "string") dr.mode = p.mode;
  else if (type === "alarm_cleared" && dr) dr.alarms.delete(p.alarm);
  else if (type in ALARM_EVENTS && dr) {
    if (type === "door_tamper" && p.active === false) dr.alarms.delete("tamper");
    else dr.alarms.add(ALARM_EVENTS[type]);
  }
  if (type === "punch") keep(d.punches, { at, p }, KEEP.punches);
  if (DECISIONS.has(type)) keep(d.decisions, { at, type, p }, KEEP.decisions);
  keep(d.events, { at, type, p }, KEEP.events);
  markAlarms(d);
  if (d.id === state.selected) renderDevice();
}

// The device list shows which devices have a door in alarm.
function markAlarms(d) {
  const alarms = [...d.doors.values()].reduce((n, dr) => n + dr.alarms.size, 0);
  let badge = d.item.querySelector(".alarm");
  if (alarms && !badge) badge = d.item.insertBefore(el("span", { className: "badge alarm" }, "alarm"),
                                                    d.item.querySelector(".state"));
  else if (!alarms && badge) badge.remove();
}

// -- commands over /ws ---------------------------------------------------------------------
function command(d, name, payload, what) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    $("command-reply").textContent = "not connected to the bench";
    return;
  }
  const id = `dash-${state.session}-${++state.nextCommand}`;
  state.pending.set(id, { device: d.id, what });
  state.ws.send(JSON.stringify({ type: "command", device_id: d.id, command: name, payload, id }));
  return id;
}

// A door sensor found closed at start raises no event (nothing happened),
// and right after a device comes online its sensor may not be read yet:
// a position still "unknown" is asked again, a few times, a little later.
const STATUS_AGAIN_MS = 2000;
const STATUS_TRIES = 3;

function askStatus(d, tries = STATUS_TRIES) {
  d.statusTries = tries;
  command(d, "status", {}, "status");
}

function commandResult(d, p, at) {
  const mine = state.pending.get(p.id);
  if (!mine || mine.device !== d.id) {
    keep(d.events, { at, type: "command_result", p: { id: p.id, command: p.command, ok: p.ok, error: p.error } },
         KEEP.events);
    if (d.id === state.selected) renderDevice();
    return;
  }
  state.pending.delete(p.id);
  if (mine.what === "status") {
    if (p.ok && p.result && typeof p.result.properties === "object" && p.result.properties) {
      fromProperties(d, p.result.properties);
      markAlarms(d);
      const unsettled = [...d.doors.values()].some((dr) => dr.position === "unknown");
      if (unsettled && d.statusTries > 1) {
        setTimeout(() => { if (d.online) askStatus(d, d.statusTries - 1); }, STATUS_AGAIN_MS);
      }
    }
  } else {
    const text = p.ok ? `${mine.what}: done` : `${mine.what}: refused (${shown(p.error)})`;
    if (d.id === state.selected) $("command-reply").textContent = text;
  }
  if (d.id === state.selected) renderDevice();
}

// The agent's properties (agent/peripherals/door.py): DOOR.lock, DOOR.door,
// DOOR.mode, DOOR.alarms; climate as temperature / humidity.
function fromProperties(d, props) {
  for (const [key, value] of Object.entries(props)) {
    const dot = key.lastIndexOf(".");
    if (dot <= 0) continue;
    const name = key.slice(0, dot);
    const field = key.slice(dot + 1);
    if (field === "lock" && typeof value === "string") door(d, name).lock = value;
    else if (field === "door" && typeof value === "string") door(d, name).position = value;
    else if (field === "mode" && typeof value === "string") door(d, name).mode = value;
    else if (field === "alarms" && Array.isArray(value)) door(d, name).alarms = new Set(value.map(String));
  }
}

// -- the admin API over fetch --------------------------------------------------------------
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (response.status === 401) {
    logout("the bench refused the admin token");
    throw new Error("not logged in");
  }
  return { ok: response.ok, status: response.status, body };
}

async function loadHistory(d) {
  if (d.loaded) return;
  d.loaded = true;
  const base = "/api/records/" + encodeURIComponent(d.id) + "?kind=";
  try {
    // The newest rows only (a long-running bench keeps them all): events
    // with room for the decisions among them.
    const last = { event: 10 * KEEP.events, punch: KEEP.punches, telemetry: KEEP.temps };
    const [events, punches, samples] = await Promise.all(
      ["event", "punch", "telemetry"].map((kind) => api(base + kind + "&last=" + last[kind])));
    // Oldest first, as the store gives them; only the tail is kept.
    const recent = (r, n) => (r.ok && Array.isArray(r.body) ? r.body.slice(-n) : []);
    const live = { events: d.events, punches: d.punches, decisions: d.decisions, temps: d.temps };
    d.events = []; d.punches = []; d.decisions = []; d.temps = [];
    for (const row of recent(punches, KEEP.punches)) {
      keep(d.punches, { at: row.received_at, p: { user: row.user_id, time: row.punch_time, action: "" } },
           KEEP.punches);
    }
    for (const row of recent(events, KEEP.events)) {
      if (row.event_type === "command_result") continue;
      event(d, row.event_type, row.payload, row.received_at, false);
    }
    for (const row of recent(samples, KEEP.temps)) telemetry(d, row.payload, row.received_at);
    // What arrived live while loading is newer: on top, once.
    const merge = (old, now, n) => now.concat(old).slice(0, n);
    d.events = merge(d.events, live.events, KEEP.events);
    d.punches = merge(d.punches, live.punches, KEEP.punches);
    d.decisions = merge(d.decisions, live.decisions, KEEP.decisions);
    d.temps = d.temps.concat(live.temps).slice(-KEEP.temps);
  } catch (e) {
    d.loaded = false;
  }
  if (d.id === state.selected) renderDevice();
}

async function sendControl(type, body) {
  const d = state.devices.get(state.selected);
  if (!d) return;
  const status = $("control-status");
  const img = $("screen");
  status.textContent = `${type}: waiting for ${d.id}…`;
  $("control-reply").textContent = "";
  const request = body === undefined ? { type } : { type, body };
  let reply;
  try {
    reply = await api("/api/control/" + encodeURIComponent(d.id), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
  } catch (e) {
    status.textContent = `${type}: ${e.message}`;
    return;
  }
  if (!reply.ok) {
    status.textContent = `${type}: ${reply.status} ${shown(reply.body && reply.body.error)}`;
    return;
  }
  const r = reply.body || {};
  status.textContent = r.error ? `${type}: the device said: ${shown(r.error)}` : `${type}: answered`;
  let text = r;
  if (typeof r.body === "string" && r.body.startsWith("iVBORw0KGgo") && /^[A-Za-z0-9+/]+={0,2}$/.test(r.body)) {
    img.src = "data:image/png;base64," + r.body;
    img.hidden = false;
    text = Object.assign({}, r, { body: `(a PNG, ${Math.floor(r.body.length * 3 / 4)} bytes, shown above)` });
  }
  const json = JSON.stringify(text, null, 2);
  $("control-reply").textContent = json.length > 20000 ? json.slice(0, 20000) + "\n…" : json;
}

// -- drawing -------------------------------------------------------------------------------
function renderDevice() {
  const d = state.devices.get(state.selected);
  $("pick").hidden = !!d;
  $("device").hidden = !d;
  if (!d) return;
  $("device-title").textContent = `${d.id} — ${d.online ? "online" : "offline"}`;
  $("device-title").className = d.online ? "on" : "off";
  renderDoors(d);
  renderClimate(d);
  const rows = (tbody, items, cells) => tbody.replaceChildren(...items.map((it) => el("tr", {}, ...cells(it).map(
    (c) => el("td", {}, c)))));
  rows($("punches"), d.punches, (it) => [clock(it.at), shown(it.p.user ?? ""), shown(it.p.time ?? ""),
                                         shown(it.p.action ?? "")]);
  rows($("decisions"), d.decisions, (it) => [clock(it.at), it.type === "unlocked" ? "granted" : "denied",
                                             shown(it.p.user ?? ""), shown(it.p.source ?? ""),
                                             shown(it.p.reason ?? it.p.credential ?? "")]);
  rows($("events"), d.events, (it) => [clock(it.at), shown(it.type), shown(it.p)]);
}

function renderDoors(d) {
  const tbody = $("doors");
  if (d.doors.size === 0) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 6, className: "hint" }, "no door reported yet")));
    return;
  }
  tbody.replaceChildren(...[...d.doors.values()].map((dr) => {
    const button = el("button", { type: "button", className: "unlock", dataset: { door: dr.name } }, "Unlock");
    button.disabled = !d.online;
    button.addEventListener("click", () => {
      $("command-reply").textContent = `unlock ${dr.name}: sent`;
      command(d, "unlock", { door: dr.name }, `unlock ${dr.name}`);
    });
    const alarms = [...dr.alarms].map((a) => el("span", { className: "badge alarm" }, a));
    return el("tr", { dataset: { door: dr.name } },
              el("td", {}, dr.name),
              el("td", { className: "lock " + (dr.lock === "unlocked" ? "on" : "") }, dr.lock),
              el("td", { className: "position" }, dr.position),
              el("td", {}, dr.mode),
              el("td", { className: "alarms" }, ...(alarms.length ? alarms : ["none"])),
              el("td", {}, button));
  }));
}

function renderClimate(d) {
  const chart = $("chart");
  const w = 360, h = 140, pad = 28;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "temperature over time");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  add("rect", { x: pad, y: 4, width: w - pad - 4, height: h - pad, class: "plot" });
  const temps = d.temps;
  if (temps.length === 0) {
    add("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "axis" }, "no samples yet");
  } else {
    let lo = Math.min(...temps.map((s) => s[1]));
    let hi = Math.max(...temps.map((s) => s[1]));
    if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
    const x = (i) => pad + (temps.length === 1 ? (w - pad - 4) / 2 : i * (w - pad - 4) / (temps.length - 1));
    const y = (v) => 4 + (hi - v) * (h - pad) / (hi - lo);
    add("polyline", { points: temps.map((s, i) => `${x(i).toFixed(1)},${y(s[1]).toFixed(1)}`).join(" "),
                      class: "line" });
    for (const [i, s] of temps.entries()) {
      if (i === temps.length - 1) add("circle", { cx: x(i).toFixed(1), cy: y(s[1]).toFixed(1), r: 3, class: "dot" });
    }
    add("text", { x: pad - 3, y: 12, "text-anchor": "end", class: "axis" }, hi.toFixed(1));
    add("text", { x: pad - 3, y: h - pad + 4, "text-anchor": "end", class: "axis" }, lo.toFixed(1));
    add("text", { x: pad, y: h - 8, class: "axis" }, clock(temps[0][0]));
    add("text", { x: w - 4, y: h - 8, "text-anchor": "end", class: "axis" }, clock(temps[temps.length - 1][0]));
  }
  chart.replaceChildren(svg);
  chart.dataset.samples = String(temps.length);
  const last = temps.length ? `${temps[temps.length - 1][1].toFixed(1)} °C` : "no temperature yet";
  $("climate").textContent = last + (d.humidity === null ? "" : `, humidity ${d.humidity.toFixed(0)} %`);
}

// -- the link ------------------------------------------------------------------------------
function setLink(text, on) {
  $("link").textContent = text;
  $("link").className = "badge " + (on ? "on" : "off");
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.ws = ws;
  setLink("connecting…", false);
  ws.addEventListener("open", () => {
    const hello = { type: "subscribe", role: "admin" };
    if (state.token) hello.token = state.token;
    ws.send(JSON.stringify(hello));
    state.retryS = 1;
    setLink("live", true);
  });
  ws.addEventListener("message", (e) => {
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    onMessage(msg);
  });
  ws.addEventListener("close", (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    for (const d of state.devices.values()) if (d.online) setOnline(d, false);
    if (e.code === 1008 && e.reason === "authentication failed") {
      logout("the bench refused the admin token");
      return;
    }
    if (!state.wantLink) return;
    setLink(`disconnected: retrying in ${state.retryS} s`, false);
    setTimeout(() => { if (state.wantLink && !state.ws) connect(); }, state.retryS * 1000);
    state.retryS = Math.min(state.retryS * 2, RECONNECT_MAX_S);
  });
}

// -- login ---------------------------------------------------------------------------------
async function login(token) {
  state.token = token || null;
  const response = await fetch("/api/login", {
    method: "POST", cache: "no-store", headers: token ? { Authorization: "Bearer " + token } : {} });
  if (!response.ok) return null;
  const body = await response.json();
  return typeof body.admin === "string" ? body.admin : null;
}

function enter(admin) {
  if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
  $("login").hidden = true;
  $("board").hidden = false;
  $("who").textContent = "admin: " + admin;
  $("logout").hidden = !state.token;
  state.wantLink = true;
  api("/api/devices").then((r) => {
    if (!r.ok || !Array.isArray(r.body)) return;
    for (const row of r.body) if (row && typeof row.device_id === "string") device(row.device_id);
    renderDevice();
  }).catch(() => {});
  connect();
}

function logout(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.wantLink = false;
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close();
  }
  state.devices.clear();
  state.selected = null;
  state.pending.clear();
  $("devices").replaceChildren();
  $("board").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  setLink("not connected", false);
  $("login").hidden = false;
  $("login-error").textContent = why || "";
  $("token").value = "";
  $("token").focus();
}

async function start() {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    $("login-error").textContent = "";
    const admin = token ? await login(token).catch(() => null) : null;
    if (admin === null) {
      state.token = null;
      $("login-error").textContent = "the bench refused that token";
      return;
    }
    $("token").value = "";
    enter(admin);
  });
  $("logout").addEventListener("click", () => logout(""));
  $("control-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const type = $("control-type").value.trim();
    const text = $("control-body").value.trim();
    let body;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch (err) {
        $("control-status").textContent = "the body is not JSON: " + err.message;
        return;
      }
    }
    if (type) sendControl(type, body);
  });
  $("snapshot").addEventListener("click", () => sendControl("screen/snapshot", { format: "png", scale: 200 }));

  // A token from earlier in this tab, else none (a loopback bench may let us in).
  const saved = sessionStorage.getItem(TOKEN_KEY);
  const admin = await login(saved).catch(() => null);
  if (admin !== null) enter(admin);
  else logout(saved ? "the bench refused the admin token" : "");
}

document.addEventListener("DOMContentLoaded", start);
