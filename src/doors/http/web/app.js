// The page: tabs, the token dialog, and each view started once.

import { onUnauthorized, setToken, token } from "./api.js";
import { startLive } from "./live.js";
import { startChat } from "./chat.js";
import { startStatus } from "./status.js";
import { startNotes } from "./notes.js";
import { startImages } from "./images.js";
import { startModels } from "./models.js";
import { startViewer } from "./viewer.js";
import { startTalk } from "./talk.js";

const tabs = [...document.querySelectorAll('[role="tab"]')];

function select(tab, focus = false) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  history.replaceState(null, "", `#${tab.id.slice(4)}`);
  window.dispatchEvent(new CustomEvent("voxd:view", { detail: tab.id.slice(4) }));
}

for (const tab of tabs) {
  tab.addEventListener("click", () => select(tab));
  tab.addEventListener("keydown", (e) => {
    const i = tabs.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    select(tabs[(next + tabs.length) % tabs.length], true);
  });
}

const dialog = document.getElementById("token-dialog");
const input = document.getElementById("token");
function askToken() {
  if (dialog.open) return;
  input.value = token();
  dialog.showModal();
}
document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const save = e.submitter && e.submitter.value === "save";
  dialog.close();
  if (save) {
    setToken(input.value);
    location.reload();
  }
});
document.getElementById("token-button").addEventListener("click", askToken);
onUnauthorized(askToken);

startViewer();
startChat();
startTalk();
startStatus();
startNotes();
startImages();
startModels();
startLive();
select(tabs.find((t) => `#${t.id.slice(4)}` === location.hash) || tabs[0]);
