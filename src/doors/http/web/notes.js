// Notes: the index (folders, counts, last update, each indexed file and
// each skipped one with why),
// hybrid search with scores (each hit opens the viewer), and reindex.

import { command } from "./api.js";
import { bytes, el, facts, when, toast } from "./dom.js";
import { openNote } from "./viewer.js";

const $ = (id) => document.getElementById(id);

async function refresh() {
  let s;
  try {
    s = await command("notes", { action: "status" });
  } catch (e) {
    facts($("notes-facts"), [["index", e.message]]);
    return;
  }
  facts($("notes-facts"), [
    ["folders", s.folders.length ? el("span", {}, ...s.folders.map((f) => el("code", { class: "path" }, f))) : "none"],
    ["files", String(s.files)],
    ["images", String(s.images)],
    ["chunks", `${s.chunks} (${s.embedded_chunks} embedded)`],
    ["sentences", `${s.sentences} (${s.embedded_sentences} embedded)`],
    ["last update", when(s.last_update)],
    ["state", s.indexing ? "indexing…" : s.enabled ? "ready" : "off (rag off)"],
    ["embedder", s.embedder ? `${s.embedder}${s.embedder_loaded ? " (loaded)" : ""}` : "none: BM25 only"],
    ["error", s.error ?? "none"],
  ]);
  const name = (path) => {
    const folder = s.folders.find((f) => path.startsWith(`${f}/`));
    return folder ? path.slice(folder.length + 1) : path;
  };
  try {
    const { files } = await command("notes", { action: "files" });
    $("files").tBodies[0].replaceChildren(
      ...files.map((f) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, el("a", { href: "#", onclick: (e) => (e.preventDefault(), openNote(f.path)) }, name(f.path))),
          el("td", {}, `${f.chunks}${f.embedded_chunks < f.chunks ? ` (${f.embedded_chunks} embedded)` : ""}`),
          el("td", {}, bytes(f.size)),
          el("td", {}, when(f.indexed_at)),
        ),
      ),
    );
  } catch (e) {
    $("files").tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 4 }, e.message)));
  }
  $("skipped").replaceChildren(
    ...(s.skipped.length
      ? s.skipped.map((f) => el("li", {}, el("code", { class: "path" }, f.path), f.reason))
      : [el("li", { class: "hint" }, "None: every file was indexed.")]),
  );
}

async function search(query) {
  const list = $("hits");
  list.replaceChildren(el("li", { class: "hint" }, "Searching…"));
  try {
    const { hits } = await command("notes", { action: "search", query });
    if (!hits.length) {
      list.replaceChildren(el("li", { class: "hint" }, "Nothing found."));
      return;
    }
    list.replaceChildren(
      ...hits.map((h) =>
        el(
          "li",
          { class: "hit" },
          el(
            "div",
            { class: "hit-head" },
            h.kind === "note"
              ? el("a", { href: "#", onclick: (e) => (e.preventDefault(), openNote(h.path, h.line_start, h.line_end)) }, `${h.name} · lines ${h.line_start}–${h.line_end}`)
              : el("span", {}, `image ${h.name}`),
            el("span", { class: "score", title: `fused ${h.score.toFixed(4)}; BM25 rank ${h.bm25_rank ?? "—"}; cosine rank ${h.cosine_rank ?? "—"}` }, `score ${h.score.toFixed(4)}${h.cosine != null ? ` · cos ${h.cosine.toFixed(2)}` : ""}`),
          ),
          h.heading ? el("p", { class: "heading" }, h.heading) : null,
          el("p", { class: "snippet" }, h.text),
        ),
      ),
    );
  } catch (e) {
    list.replaceChildren(el("li", { class: "hint" }, e.message));
  }
}

export function startNotes() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search($("search").value.trim());
  });
  $("reindex-button").addEventListener("click", async () => {
    $("reindex-result").textContent = "Reindexing…";
    try {
      const r = await command("notes", { action: "reindex" });
      $("reindex-result").textContent = `${r.files} files: ${r.indexed} indexed, ${r.unchanged} unchanged, ${r.removed} removed, ${r.skipped} skipped (${r.elapsed_ms} ms)`;
    } catch (e) {
      $("reindex-result").textContent = "";
      toast(e.message);
    }
    refresh();
  });
  window.addEventListener("voxd:view", (e) => e.detail === "notes" && refresh());
  for (const name of ["notes.indexed", "notes.changed", "notes.removed", "notes.renamed"]) {
    window.addEventListener(`voxd:${name}`, refresh);
  }
}
