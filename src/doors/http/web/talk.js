// Push-to-talk: while the button is held (pointer, or Space/Enter on it)
// the microphone is recorded (getUserMedia: the browser allows it on
// localhost or https); on release the audio goes to voxd as a WAV file
// for transcription, and what it heard is asked, the answer spoken.

import { request } from "./api.js";
import { toast } from "./dom.js";
import { ask } from "./chat.js";

let recording = null;

/** 16-bit mono WAV of `chunks` (Float32Arrays) at `rate`. */
function wav(chunks, rate) {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * length));
  const text = (at, s) => [...s].forEach((ch, i) => view.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + 2 * length, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, 2 * length, true);
  let at = 44;
  for (const chunk of chunks) {
    for (const s of chunk) {
      view.setInt16(at, Math.max(-1, Math.min(1, s)) * 0x7fff, true);
      at += 2;
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

async function start(button) {
  if (recording) return;
  recording = { chunks: [], starting: true };
  const mine = recording;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    // ScriptProcessor: deprecated, but needs no worklet file and gives
    // the raw samples every browser can record.
    const node = context.createScriptProcessor(4096, 1, 1);
    node.onaudioprocess = (e) => mine.chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(node);
    node.connect(context.destination);
    Object.assign(mine, { stream, context, node, starting: false });
    button.classList.add("recording");
    button.textContent = "Listening… release to send";
    if (mine.stopRequested) stop(button);
  } catch (e) {
    recording = null;
    toast(`No microphone: ${e.message}`);
  }
}

async function stop(button) {
  const mine = recording;
  if (!mine) return;
  if (mine.starting) {
    mine.stopRequested = true;
    return;
  }
  recording = null;
  mine.node.disconnect();
  mine.stream.getTracks().forEach((t) => t.stop());
  const rate = mine.context.sampleRate;
  await mine.context.close();
  button.classList.remove("recording");
  button.textContent = "Hold to talk";
  const form = new FormData();
  form.append("file", wav(mine.chunks, rate), "question.wav");
  form.append("model", "whisper-1");
  form.append("response_format", "json");
  try {
    const sent = performance.now();
    const response = await request("/v1/audio/transcriptions", { method: "POST", body: form });
    const { text } = await response.json();
    const sttMs = Math.round(performance.now() - sent);
    if (!text.trim()) {
      toast("Nothing was heard.");
      return;
    }
    await ask(text.trim(), { speakIt: true, source: "talk", sttMs });
  } catch (e) {
    toast(`Cannot transcribe: ${e.message}`);
  }
}

export function startTalk() {
  const button = document.getElementById("talk-button");
  button.addEventListener("pointerdown", (e) => {
    button.setPointerCapture(e.pointerId);
    start(button);
  });
  button.addEventListener("pointerup", () => stop(button));
  button.addEventListener("pointercancel", () => stop(button));
  button.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) {
      e.preventDefault();
      start(button);
    }
  });
  button.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") stop(button);
  });
}
