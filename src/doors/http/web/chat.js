// Chat: the question goes to /v1/chat/completions (model `voxd`, streamed);
// the answer is written as it comes, then settled with voxd's citations,
// each a link that opens the cited lines in the viewer. Mode, notes on or
// off and the session ride in the request's `voxd` field.

import { command, events, post, request } from "./api.js";
import { basename, el, toast } from "./dom.js";
import { openNote } from "./viewer.js";

const $ = (id) => document.getElementById(id);
/** The page's conversation, sent as history with each question. */
const turns = [];

/** The answer's text, its `[n]` markers made links to citation `n`. */
function linked(text, citations) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const cite = citations.find((c) => c.n === Number(m[1]));
    if (!cite) continue;
    parts.push(text.slice(last, m.index), citeLink(cite, m[0]));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function citeLink(cite, label) {
  if (cite.kind !== "note") return el("span", { class: "cite-image", title: cite.path }, label);
  return el(
    "a",
    {
      href: "#",
      class: "cite",
      title: `${basename(cite.path)}, lines ${cite.start_line}–${cite.end_line}`,
      onclick: (e) => {
        e.preventDefault();
        openNote(cite.path, cite.start_line, cite.end_line);
      },
    },
    label,
  );
}

function sources(citations) {
  if (!citations.length) return null;
  return el(
    "ol",
    { class: "sources", "aria-label": "Sources" },
    citations.map((c) =>
      el(
        "li",
        {},
        citeLink(
          c,
          c.kind === "note"
            ? `[${c.n}] ${basename(c.path)} · line${c.start_line === c.end_line ? "" : "s"} ${c.start_line}${c.start_line === c.end_line ? "" : `–${c.end_line}`}`
            : `[${c.n}] image ${basename(c.path)}`,
        ),
        el("q", {}, c.snippet),
      ),
    ),
  );
}

/** Plays `text` in the page, spoken by voxd's voice. */
export async function speak(text) {
  const response = await request("/v1/audio/speech", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "tts-1", voice: "alloy", input: text, response_format: "wav" }),
  });
  const url = URL.createObjectURL(await response.blob());
  const audio = new Audio(url);
  audio.addEventListener("ended", () => URL.revokeObjectURL(url));
  await audio.play();
}

/** Asks `question`, streaming the answer into the conversation; `source`
 * and `sttMs` (how long its transcription took) go to the timing chart. */
export async function ask(question, { speakIt = $("speak").checked, source = "chat", sttMs } = {}) {
  $("chat-hint")?.remove();
  const list = $("conversation");
  const body = el("p", { class: "text" });
  const meta = el("p", { class: "meta" }, "…");
  const answer = el("div", { class: "answer", "aria-busy": "true" }, body, meta);
  list.append(el("div", { class: "question" }, question), answer);
  answer.scrollIntoView({ block: "end" });
  const session = $("session").value.trim() || undefined;
  const messages = turns.flatMap((t) => [
    { role: "user", content: t.question },
    { role: "assistant", content: t.answer },
  ]);
  messages.push({ role: "user", content: question });
  const started = performance.now();
  let firstToken = null;
  let text = "";
  let grounding = null;
  try {
    const response = await request("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: "voxd",
        stream: true,
        messages,
        voxd: { mode: $("mode").value, rag: $("rag").checked, session },
      }),
    });
    for await (const { data } of events(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || chunk.error);
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        firstToken ??= performance.now() - started;
        text += piece;
        body.textContent = text;
      }
      if (chunk.voxd) grounding = chunk.voxd;
    }
  } catch (e) {
    answer.classList.add("failed");
    body.textContent = text || "";
    meta.textContent = `Failed: ${e.message}`;
    answer.removeAttribute("aria-busy");
    return;
  }
  const total = performance.now() - started;
  const citations = grounding?.citations || [];
  const settled = grounding?.text ?? text;
  body.replaceChildren(...linked(settled, citations));
  const src = sources(citations);
  if (src) answer.insertBefore(src, meta);
  const mode = grounding ? `${grounding.mode}${grounding.abstained ? " (not in the notes)" : ""}` : "model";
  meta.textContent = `${mode} · first words ${Math.round(firstToken ?? total)} ms · ${Math.round(total)} ms`;
  answer.removeAttribute("aria-busy");
  answer.dataset.done = "true";
  answer.scrollIntoView({ block: "end" });
  turns.push({ question, answer: settled });
  window.dispatchEvent(
    new CustomEvent("voxd:turn", {
      detail: { source, stt_ms: sttMs, first_token_ms: firstToken, total_ms: total },
    }),
  );
  if (session) refreshSessions();
  if (speakIt) speak(settled).catch((e) => toast(`Cannot speak: ${e.message}`));
}

const turnCount = (n) => `${n} turn${n === 1 ? "" : "s"}`;

async function refreshSessions() {
  try {
    const { sessions } = await command("history");
    $("sessions").replaceChildren(...sessions.map((s) => el("option", { value: s.session }, turnCount(s.turns))));
  } catch {
    // the list is a convenience
  }
}

/** Shows the session's stored turns in the conversation. */
async function showHistory() {
  const session = $("session").value.trim();
  if (!session) return toast("Name a session first.");
  try {
    const { turns: stored } = await command("history", { session });
    $("chat-hint")?.remove();
    const list = $("conversation");
    list.append(el("p", { class: "hint" }, `Session ${session}: ${turnCount(stored.length)} stored`));
    for (const t of stored) {
      list.append(el("div", { class: "question" }, t.question), el("div", { class: "answer old" }, el("p", { class: "text" }, t.answer)));
    }
  } catch (e) {
    toast(e.message);
  }
}

async function forget() {
  const session = $("session").value.trim();
  if (!session) return toast("Name a session first.");
  try {
    const r = await command("forget", { session });
    toast(`Forgot ${turnCount(r.forgotten_turns)} of ${session}.`);
    turns.length = 0;
    refreshSessions();
  } catch (e) {
    toast(e.message);
  }
}

export function startChat() {
  // On a phone the options would hide the conversation: folded away.
  const narrow = matchMedia("(max-width: 700px)");
  const fold = () => ($("chat-options").open = !narrow.matches);
  fold();
  narrow.addEventListener("change", fold);
  const form = $("ask-form");
  const input = $("question");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    $("ask-button").disabled = true;
    try {
      await ask(question);
    } finally {
      $("ask-button").disabled = false;
    }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  $("history-button").addEventListener("click", showHistory);
  $("forget-button").addEventListener("click", forget);
  refreshSessions();
}
