// The note viewer: a note's lines (from /v1/voxd/note, which serves only
// files inside the notes folders), the cited ones marked and scrolled to.

import { request } from "./api.js";
import { el, toast } from "./dom.js";

const dialog = () => document.getElementById("viewer");

/** Opens the note at `path` with lines `start`..`end` (1-based) marked. */
export async function openNote(path, start = 0, end = start) {
  let note;
  try {
    const response = await request(`/v1/voxd/note?path=${encodeURIComponent(path)}`);
    note = await response.json();
  } catch (e) {
    toast(`Cannot open ${path}: ${e.message}`);
    return;
  }
  document.getElementById("viewer-title").textContent =
    start ? `${note.name} · lines ${start}–${end}` : note.name;
  const lines = note.text.replace(/\n$/, "").split("\n");
  const list = document.getElementById("viewer-lines");
  list.replaceChildren(
    ...lines.map((line, i) =>
      el("li", { class: i + 1 >= start && i + 1 <= end ? "cited" : null }, line || "\u00a0"),
    ),
  );
  dialog().showModal();
  list.querySelector(".cited")?.scrollIntoView({ block: "center" });
}

export function startViewer() {
  document.getElementById("viewer-close").addEventListener("click", () => dialog().close());
  dialog().addEventListener("click", (e) => {
    if (e.target === dialog()) dialog().close();
  });
}
