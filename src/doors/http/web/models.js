// Models: every model voxd knows, installed or not, with its size; per
// profile, which model each role uses (the first installed of its
// candidates: a later one is a fallback).

import { command } from "./api.js";
import { bytes, el } from "./dom.js";

const $ = (id) => document.getElementById(id);
let listed = null;

/** The `models` list, fetched once per page. */
function models() {
  listed ??= command("models").then((r) => r.models).catch((e) => {
    listed = null;
    throw e;
  });
  return listed;
}

/** Per role, the candidates of `profile` (`null`: this daemon's own). */
function roles(all, profile) {
  const byRole = new Map();
  for (const m of all) {
    for (const u of m.used_by) {
      if ((u.profile ?? null) !== profile) continue;
      if (!byRole.has(u.role)) byRole.set(u.role, []);
      byRole.get(u.role).push({ rank: u.rank, model: m });
    }
  }
  for (const list of byRole.values()) list.sort((a, b) => a.rank - b.rank);
  return byRole;
}

/** The model this daemon uses for `role`, if one is installed. */
export async function roleModel(role) {
  try {
    const candidates = roles(await models(), null).get(role) || [];
    return candidates.find((c) => c.model.state === "installed")?.model.id ?? null;
  } catch {
    return null;
  }
}

function renderRoles(all, profile) {
  const rows = [];
  for (const [role, candidates] of roles(all, profile)) {
    const used = candidates.find((c) => c.model.state === "installed");
    rows.push(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, role),
        el(
          "td",
          { "data-label": "uses" },
          used ? used.model.id : el("span", { class: "pill missing" }, "none installed"),
          used && used.rank > 0 ? el("span", { class: "pill fallback" }, "fallback") : null,
        ),
        el(
          "td",
          { class: "candidates", "data-label": "candidates" },
          candidates.map((c) => el("span", { class: `pill ${c.model.state}`, title: c.model.state }, c.model.id)),
        ),
      ),
    );
  }
  $("roles").tBodies[0].replaceChildren(...rows);
}

async function render() {
  let all;
  try {
    all = await models();
  } catch (e) {
    $("models").tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 4 }, e.message)));
    return;
  }
  const profiles = [...new Set(all.flatMap((m) => m.used_by.map((u) => u.profile ?? null)))];
  const select = $("profile");
  const chosen = select.value || "";
  select.replaceChildren(
    ...profiles.map((p) => el("option", { value: p ?? "", selected: (p ?? "") === chosen }, p ?? "this daemon")),
  );
  renderRoles(all, select.value || null);
  $("models").tBodies[0].replaceChildren(
    ...all.map((m) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, m.id, el("br"), el("small", {}, m.description)),
        el("td", { "data-label": "kind" }, m.kind),
        el("td", { "data-label": "state" }, el("span", { class: `pill ${m.state}` }, m.state)),
        el("td", { "data-label": "size" }, bytes(m.size ?? (m.installed_bytes || null))),
      ),
    ),
  );
}

export function startModels() {
  $("profile").addEventListener("change", render);
  window.addEventListener("voxd:view", (e) => e.detail === "models" && render());
}
