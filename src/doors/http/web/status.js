// Status: the daemon, its engines and memory budget (`status`, fetched
// again on every engine or speech event and every few seconds), listening
// (`listen status`), what it heard last and the recent turns' timings
// (from the live events).

import { command } from "./api.js";
import { bytes, duration, el, facts, mib, toast } from "./dom.js";
import { roleModel } from "./models.js";

const $ = (id) => document.getElementById(id);
const TURNS = 8;
const recent = [];
let uptime = null;

function renderDaemon(s) {
  uptime = { secs: s.uptime_secs, at: performance.now() };
  facts($("daemon-facts"), [
    ["version", s.version],
    ["profile", s.profile],
    ["uptime", duration(s.uptime_secs)],
    ["pid", String(s.pid)],
    ["memory", bytes(s.rss_bytes)],
    ["requests", String(s.queue_depth)],
    ["speech queue", String(s.speech.active)],
    ["voice", s.speech.voice ? s.speech.voice.split("/").pop() : "not loaded"],
    ["model", s.llm?.model?.name ?? "not loaded"],
  ]);
  showSummary(s.profile);
}

function showSummary(profile) {
  if (!uptime) return;
  const secs = uptime.secs + (performance.now() - uptime.at) / 1000;
  $("summary").textContent = `${profile ?? $("summary").dataset.profile} · up ${duration(secs)}`;
  if (profile) $("summary").dataset.profile = profile;
}

function renderBudget(budget, engines) {
  const parts = [{ name: "daemon", mb: budget.daemon_mb }];
  for (const name of budget.resident) {
    const e = engines.find((x) => x.name === name);
    if (e) parts.push({ name, mb: e.measured_mb ?? e.memory_mb });
  }
  const scale = Math.max(budget.budget_mb, budget.used_mb, 1);
  $("budget-bar").replaceChildren(
    ...parts.map((p, i) =>
      el("span", { class: `part p${i % 4}`, style: { width: `${(100 * p.mb) / scale}%` }, title: `${p.name}: ${p.mb} MiB` }),
    ),
  );
  $("budget-bar").setAttribute(
    "aria-label",
    `${budget.used_mb} MiB used of ${budget.budget_mb ? `${budget.budget_mb} MiB` : "no budget"}`,
  );
  $("budget-legend").replaceChildren(
    el("strong", {}, `${budget.used_mb} MiB`),
    budget.budget_mb ? ` of ${budget.budget_mb} MiB budget` : " used (no budget set)",
    el("br"),
    ...parts.map((p, i) => el("span", { class: "legend-item" }, el("span", { class: `key p${i % 4}` }), `${p.name} ${p.mb} MiB `)),
  );
}

async function renderEngines(s) {
  const rows = await Promise.all(
    s.engines.map(async (e) => {
      const model = e.name === "llm" && s.llm?.model ? s.llm.model.name : await roleModel(e.name);
      return el(
        "tr",
        { dataset: { engine: e.name } },
        el("th", { scope: "row" }, e.name),
        el("td", { "data-label": "state" }, el("span", { class: `pill ${e.state}` }, e.state)),
        el("td", { class: "model", "data-label": "model" }, model ?? "—"),
        el("td", { "data-label": "RSS" }, bytes(e.rss_bytes)),
        el("td", { "data-label": "measured" }, e.measured_mb ? mib(e.measured_mb) : `≈ ${mib(e.memory_mb)}`),
        el("td", { "data-label": "restarts" }, String(e.restarts)),
      );
    }),
  );
  $("engines").tBodies[0].replaceChildren(...rows);
}

async function refresh() {
  try {
    const s = await command("status");
    renderDaemon(s);
    renderBudget(s.budget, s.engines);
    await renderEngines(s);
  } catch (e) {
    $("summary").textContent = `voxd: ${e.message}`;
  }
  try {
    const l = await command("listen", { action: "status" });
    facts($("listen-facts"), [
      ["listening", l.listening ? (l.muted ? "muted" : "on") : "off"],
      ["state", l.state],
      ["input", l.input || "—"],
      ["wake words", (l.wake_words || []).concat(l.wake_phrases || []).join(", ") || "—"],
      ["heard", `${Math.round(l.heard_secs)} s · ${l.wakes} wakes · ${l.utterances} utterances`],
      ["error", l.error ?? "none"],
    ]);
    $("mute-button").textContent = l.muted ? "Unmute" : "Mute";
    $("mute-button").disabled = !l.listening;
    $("mute-button").dataset.muted = String(l.muted);
  } catch {
    facts($("listen-facts"), [["listening", "unknown"]]);
  }
}

let pending = null;
/** Fetches the status again soon (events come in bursts). */
function soon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 250);
}

function heard(kind, text) {
  const list = $("heard-facts");
  const pairs = [...list.querySelectorAll("dt")].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]);
  const stamp = new Date().toLocaleTimeString();
  facts(list, pairs.map(([k, v]) => [k, k === kind ? `${text} (${stamp})` : v]));
}

function addTurn(t) {
  recent.push(t);
  while (recent.length > TURNS) recent.shift();
  const longest = Math.max(...recent.map((r) => (r.stt_ms || 0) + r.total_ms), 1);
  const pct = (ms) => `${(100 * ms) / longest}%`;
  $("timings").replaceChildren(
    ...recent.map((r) => {
      const stt = r.stt_ms || 0;
      const token = r.first_token_ms ?? r.total_ms;
      const audio = r.first_audio_ms ?? token;
      const label = [
        r.stt_ms != null && `transcript ${r.stt_ms} ms`,
        r.first_token_ms != null && `first token ${Math.round(r.first_token_ms)} ms`,
        r.first_audio_ms != null && `first audio ${r.first_audio_ms} ms`,
        `total ${Math.round(r.total_ms)} ms`,
      ].filter(Boolean).join(" · ");
      return el(
        "div",
        { class: "turn", role: "img", "aria-label": `${r.source}: ${label}` },
        el("span", { class: "turn-label" }, r.source),
        el(
          "span",
          { class: "track" },
          el("span", { class: "seg stt", style: { width: pct(stt) } }),
          el("span", { class: "seg token", style: { width: pct(token) } }),
          el("span", { class: "seg audio", style: { width: pct(Math.max(audio - token, 0)) } }),
          el("span", { class: "seg rest", style: { width: pct(Math.max(r.total_ms - Math.max(audio, token), 0)) } }),
        ),
        el("span", { class: "turn-figures" }, label),
      );
    }),
  );
}

function logEvent({ event, data }) {
  const list = $("events");
  const summary = JSON.stringify(data);
  list.prepend(el("li", {}, el("time", {}, new Date().toLocaleTimeString()), " ", el("code", {}, event), " ", summary.length > 160 ? `${summary.slice(0, 160)}…` : summary));
  while (list.children.length > 30) list.lastChild.remove();
}

export function startStatus() {
  refresh();
  setInterval(refresh, 5000);
  setInterval(() => showSummary(), 1000);
  for (const name of ["engine.state", "speech.started", "speech.finished", "speech.interrupted", "rag.state", "voxd:connected"]) {
    window.addEventListener(name.startsWith("voxd:") ? name : `voxd:${name}`, soon);
  }
  window.addEventListener("voxd:event", (e) => {
    logEvent(e.detail);
    if (e.detail.event.startsWith("listen.")) soon();
  });
  window.addEventListener("voxd:wake.detected", (e) => heard("wake", `${e.detail.name} (${(e.detail.score ?? 1).toFixed(2)})`));
  window.addEventListener("voxd:transcript.final", (e) => heard("transcript", e.detail.text));
  window.addEventListener("voxd:assistant.reply", (e) => addTurn({ source: e.detail.intent === "ask" ? "voice" : e.detail.intent, ...e.detail.timings }));
  window.addEventListener("voxd:turn", (e) => addTurn(e.detail));
  $("mute-button").addEventListener("click", async () => {
    const action = $("mute-button").dataset.muted === "true" ? "unmute" : "mute";
    try {
      await command("listen", { action });
      refresh();
    } catch (e) {
      toast(e.message);
    }
  });
}
