// The daemon's events, live: one `/v1/voxd/events` stream for the page,
// each event passed on as a `voxd:<name>` window event; reconnected with
// back-off when it drops.

import { events, request } from "./api.js";

const WANTED = [
  "daemon.", "engine.", "listen.", "wake.", "transcript.", "speech.started",
  "speech.finished", "speech.interrupted", "assistant.", "notes.", "rag.", "image.",
];

function show(state) {
  const live = document.getElementById("live");
  live.textContent = state;
  live.dataset.state = state;
}

export async function startLive() {
  let wait = 1000;
  for (;;) {
    try {
      const response = await request(`/v1/voxd/events?events=${WANTED.join(",")}`);
      show("live");
      wait = 1000;
      window.dispatchEvent(new CustomEvent("voxd:connected"));
      for await (const { event, data } of events(response)) {
        let detail = null;
        try {
          detail = JSON.parse(data);
        } catch {
          continue;
        }
        window.dispatchEvent(new CustomEvent("voxd:event", { detail: { event, data: detail } }));
        window.dispatchEvent(new CustomEvent(`voxd:${event}`, { detail }));
      }
    } catch {
      // dropped or refused: try again
    }
    show("offline");
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 15000);
  }
}
