"use strict";
// The mixnet.serve page: send a raw vocal to v1/mix, then compare raw (A) and mixed (B).
// Both are decoded with Web Audio and play together from the same position; the A/B switch only
// moves the gain, so the comparison is instant and in sync. "Match loudness" scales the louder
// one down to the quieter one's integrated loudness (the X-Mixnet-*-LUFS headers, ITU-R
// BS.1770), so louder does not sound better. URLs are relative, so the page also works behind
// a reverse proxy under a path prefix.

const $ = (id) => document.getElementById(id);
const SILENT_LUFS = -69;  // the service's loudness floor is -70 LUFS: nothing to match
const state = {
  file: null, buffers: {}, lufs: {}, ctx: null, sources: [], gains: null,
  startedAt: 0, offset: 0, playing: false, url: null, waves: {},
};

function setStatus(text, fraction) {
  $("status").textContent = text;
  if (fraction === null) $("progress").removeAttribute("value");
  else $("progress").value = fraction;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function audioContext() {
  if (!state.ctx) state.ctx = new AudioContext();
  return state.ctx;
}

async function loadInfo() {
  try {
    const info = await (await fetch("v1/info")).json();
    $("engine").textContent = info.engine === "model"
      ? `model ${info.model.version}` : "DSP chain (no model loaded)";
    $("preset-field").hidden = info.presets.length === 0;
    for (const name of info.presets) {
      $("preset").add(new Option(name, name, false, name === info.default_preset));
    }
    [$("loudness").min, $("loudness").max] = info.loudness_range_lufs;
  } catch (err) {
    $("engine").textContent = "service unreachable";
    showError(`Cannot reach the service: ${err}`);
  }
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("file-name").textContent = `${file.name} (${(file.size / 2 ** 20).toFixed(1)} MiB)`;
  $("mix").disabled = false;
  mix();
}

function mixForm() {
  const form = new FormData();
  if (!$("preset-field").hidden) form.append("preset", $("preset").value);
  form.append("format", $("format").value);
  if ($("loudness").value) form.append("loudness_lufs", $("loudness").value);
  if ($("strength").value) form.append("strength", $("strength").value);
  form.append("file", state.file, state.file.name);
  return form;
}

function mix() {
  stop();
  showError("");
  document.body.dataset.state = "uploading";
  $("mix").disabled = true;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "v1/mix");
  xhr.responseType = "arraybuffer";
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      setStatus(`Uploading… ${Math.round(100 * e.loaded / e.total)}%`, e.loaded / e.total);
    }
  };
  xhr.upload.onload = () => {
    document.body.dataset.state = "mixing";
    setStatus("Mixing…", null);
  };
  xhr.onerror = () => failed("The service could not be reached.");
  xhr.onload = () => (xhr.status === 200 ? received(xhr) : failed(errorText(xhr)));
  setStatus("Uploading…", 0);
  xhr.send(mixForm());
}

function errorText(xhr) {
  try {
    const body = JSON.parse(new TextDecoder().decode(xhr.response));
    return `${xhr.status} ${body.error}: ${body.detail}`;
  } catch {
    return `${xhr.status} ${xhr.statusText}`;
  }
}

function failed(text) {
  document.body.dataset.state = "error";
  $("mix").disabled = !state.file;
  setStatus("Not mixed.", 0);
  showError(text);
}

async function received(xhr) {
  const header = (name) => xhr.getResponseHeader(name);
  state.lufs = { raw: +header("X-Mixnet-Input-LUFS"), mixed: +header("X-Mixnet-Output-LUFS") };
  setDownload(xhr.response, header("Content-Type"), header("Content-Disposition"));
  try {
    const ctx = audioContext();
    const [raw, mixed] = await Promise.all([
      ctx.decodeAudioData(await state.file.arrayBuffer()), ctx.decodeAudioData(xhr.response.slice(0))]);
    state.buffers = { raw, mixed };
  } catch (err) {
    failed(`The mix is ready to download, but this browser cannot play it: ${err}`);
    return;
  }
  state.offset = 0;
  $("raw-facts").textContent = `${state.lufs.raw.toFixed(1)} LUFS`;
  $("mixed-facts").textContent = `${state.lufs.mixed.toFixed(1)} LUFS, ${header("X-Mixnet-Engine")}`
    + (header("X-Mixnet-Preset") ? ` (${header("X-Mixnet-Preset")})` : "");
  $("player").hidden = false;
  state.waves = { raw: drawWave(state.buffers.raw, "--raw"), mixed: drawWave(state.buffers.mixed, "--mixed") };
  drawPlayhead();
  $("mix").disabled = false;
  document.body.dataset.state = "mixed";
  setStatus(`Mixed ${(+header("X-Mixnet-Duration-S")).toFixed(1)} s of audio in `
    + `${(+header("X-Mixnet-Processing-S")).toFixed(2)} s.`, 1);
}

function setDownload(bytes, type, disposition) {
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(new Blob([bytes], { type }));
  const match = /filename="([^"]+)"/.exec(disposition || "");
  $("download").href = state.url;
  $("download").download = match ? match[1] : "mixed.wav";
}

// Min/max of the channel average per pixel column, drawn once onto an offscreen canvas.
function drawWave(buffer, colorVar) {
  const width = $("wave-raw").width, height = $("wave-raw").height;
  const canvas = new OffscreenCanvas(width, height);
  const g = canvas.getContext("2d");
  g.fillStyle = getComputedStyle(document.documentElement).getPropertyValue(colorVar);
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c));
  const perPixel = Math.max(1, Math.floor(buffer.length / width));
  for (let x = 0; x < width; x++) {
    let lo = 0, hi = 0;
    for (let i = x * perPixel; i < Math.min((x + 1) * perPixel, buffer.length); i++) {
      let v = 0;
      for (const data of channels) v += data[i];
      v /= channels.length;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    g.fillRect(x, (1 - hi) * height / 2, 1, Math.max(1, (hi - lo) * height / 2));
  }
  return canvas;
}

function position() {
  if (!state.playing) return state.offset;
  return Math.min(state.ctx.currentTime - state.startedAt, state.buffers.mixed.duration);
}

function drawPlayhead() {
  for (const key of ["raw", "mixed"]) {
    const canvas = $(`wave-${key}`), g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.drawImage(state.waves[key], 0, 0);
    const x = canvas.width * position() / state.buffers.mixed.duration;
    g.fillStyle = "#d33";
    g.fillRect(x, 0, 2, canvas.height);
  }
  if (state.playing) requestAnimationFrame(drawPlayhead);
}

function gainsFor() {
  const { raw, mixed } = state.lufs;
  if (!$("match").checked || !(raw > SILENT_LUFS && mixed > SILENT_LUFS)) return { raw: 1, mixed: 1 };
  const target = Math.min(raw, mixed);
  return { raw: 10 ** ((target - raw) / 20), mixed: 10 ** ((target - mixed) / 20) };
}

function applyGains() {
  if (!state.gains) return;
  const wanted = gainsFor(), listening = document.body.dataset.listening;
  for (const key of ["raw", "mixed"]) {
    state.gains[key].gain.setTargetAtTime(key === listening ? wanted[key] : 0,
      state.ctx.currentTime, 0.01);
  }
}

function play() {
  const ctx = audioContext();
  ctx.resume();
  const start = ctx.currentTime + 0.05;
  state.gains = { raw: ctx.createGain(), mixed: ctx.createGain() };
  state.sources = ["raw", "mixed"].map((key) => {
    const source = ctx.createBufferSource();
    source.buffer = state.buffers[key];
    source.connect(state.gains[key]).connect(ctx.destination);
    source.start(start, state.offset);
    return source;
  });
  state.sources[1].onended = () => { state.offset = 0; stop(); drawPlayhead(); };
  state.startedAt = start - state.offset;
  state.playing = true;
  applyGains();
  $("play").textContent = "Pause";
  requestAnimationFrame(drawPlayhead);
}

function stop() {
  for (const source of state.sources) {
    source.onended = null;
    source.stop();
  }
  state.sources = [];
  state.gains = null;
  state.playing = false;
  $("play").textContent = "Play";
}

function togglePlay() {
  if (!state.playing) return play();
  state.offset = position();
  stop();
}

function listen(which) {
  document.body.dataset.listening = which;
  $("listen-raw").setAttribute("aria-pressed", String(which === "raw"));
  $("listen-mixed").setAttribute("aria-pressed", String(which === "mixed"));
  applyGains();
}

function seek(event) {
  const rect = event.target.getBoundingClientRect();
  const wasPlaying = state.playing;
  if (wasPlaying) stop();
  state.offset = state.buffers.mixed.duration * (event.clientX - rect.left) / rect.width;
  if (wasPlaying) play();
  else drawPlayhead();
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
  $("mix").addEventListener("click", mix);
  $("play").addEventListener("click", togglePlay);
  $("listen-raw").addEventListener("click", () => listen("raw"));
  $("listen-mixed").addEventListener("click", () => listen("mixed"));
  $("match").addEventListener("change", applyGains);
  $("wave-raw").addEventListener("click", seek);
  $("wave-mixed").addEventListener("click", seek);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || !state.buffers.mixed) return;
    if (e.key === "a" || e.key === "b") listen(e.key === "a" ? "raw" : "mixed");
  });
}

wire();
loadInfo();
