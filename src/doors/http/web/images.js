// Images: the watched folders and what the watcher captioned there,
// newest first with thumbnails (`images list`, `/v1/voxd/image`), and
// an image dropped on the page (or chosen) captioned by voxd now
// (`/v1/voxd/caption`; nothing is recorded).

import { command, request } from "./api.js";
import { basename, bytes, el, when, toast } from "./dom.js";

const $ = (id) => document.getElementById(id);
/** Thumbnails shown at most (newest first). */
const SHOWN = 48;
let thumbnails = [];

/** An `<img>` of the watched image at `path`, fetched with the token. */
function thumbnail(path) {
  const img = el("img", { alt: "", loading: "lazy" });
  request(`/v1/voxd/image?path=${encodeURIComponent(path)}`)
    .then((r) => r.blob())
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      thumbnails.push(url);
      img.src = url;
    })
    .catch(() => img.remove());
  return img;
}

async function refresh() {
  const list = $("images");
  try {
    const { images, folders } = await command("images", { action: "list" });
    $("image-folders").replaceChildren(
      folders.length ? "Watching " : "No watched folders: set vision.folders.",
      ...folders.flatMap((f, i) => [i ? ", " : "", el("code", {}, f)]),
    );
    thumbnails.forEach((url) => URL.revokeObjectURL(url));
    thumbnails = [];
    list.replaceChildren(
      ...(images.length
        ? images.slice(0, SHOWN).map((i) =>
            el(
              "li",
              { class: "picture" },
              thumbnail(i.path),
              el("p", { class: "caption" }, i.caption),
              el("p", { class: "hint" }, el("code", { title: i.path }, basename(i.path)), ` · ${i.width}×${i.height} ${i.format} · ${bytes(i.size)} · ${when(i.added_at)}`),
            ),
          )
        : [el("li", { class: "hint" }, "No captioned images yet: voxd captions what lands in its image folders.")]),
    );
  } catch (e) {
    list.replaceChildren(el("li", { class: "hint" }, e.message));
  }
}

async function caption(file) {
  const url = URL.createObjectURL(file);
  const text = el("p", { class: "caption", "aria-busy": "true" }, "Captioning…");
  const item = el("li", { class: "picture" }, el("img", { src: url, alt: file.name }), text, el("p", { class: "hint" }, file.name));
  $("captioned-now").prepend(item);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await request("/v1/voxd/caption", { method: "POST", body: form });
    const r = await response.json();
    text.textContent = r.caption;
    item.querySelector(".hint").textContent = `${file.name} · ${r.width}×${r.height} ${r.format}`;
  } catch (e) {
    text.textContent = `Cannot caption: ${e.message}`;
    item.classList.add("failed");
    toast(e.message);
  }
  text.removeAttribute("aria-busy");
}

export function startImages() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const file of e.dataTransfer.files) caption(file);
  });
  // A drop anywhere on the page captions it too, rather than the browser
  // leaving the page to show the file.
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    if (drop.contains(e.target)) return;
    e.preventDefault();
    const files = [...(e.dataTransfer?.files || [])].filter((f) => f.type.startsWith("image/"));
    if (files.length) {
      document.getElementById("tab-images").click();
      files.forEach(caption);
    }
  });
  $("choose-image").addEventListener("click", () => $("image-file").click());
  $("image-file").addEventListener("change", (e) => {
    for (const file of e.target.files) caption(file);
    e.target.value = "";
  });
  window.addEventListener("voxd:view", (e) => e.detail === "images" && refresh());
  for (const name of ["image.captioned", "image.removed"]) window.addEventListener(`voxd:${name}`, refresh);
}
