// The dfdetect page: upload a file, follow the job, show the verdict and why. No libraries, nothing remote.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e", "#37474f"];
const SVG = "http://www.w3.org/2000/svg";
let pollTimer = null;
const objectUrls = [];

function token() { return $("token").value.trim(); }
function authHeaders() { return token() ? { Authorization: "Bearer " + token() } : {}; }

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function show(id, visible) { $(id).hidden = !visible; }

function showError(message) {
  $("error").textContent = message;
  show("error", true);
  show("status", false);
}

function setStatus(text, progress) {
  $("status-text").textContent = text;
  if (progress === null) $("progress").removeAttribute("value"); else $("progress").value = progress;
  show("status", true);
}

// A file of the server: a plain URL, or with a token a blob fetched with the Authorization header.
async function fileUrl(url) {
  if (!token()) return url;
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error("cannot load " + url + " (" + response.status + ")");
  const objectUrl = URL.createObjectURL(await response.blob());
  objectUrls.push(objectUrl);
  return objectUrl;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body.error) return body.error.message;
  } catch (e) { /* not JSON */ }
  return "the server answered " + response.status;
}

async function init() {
  $("token").value = localStorage.getItem("dfdetect-token") || "";
  $("token").addEventListener("change", () => localStorage.setItem("dfdetect-token", token()));
  try {
    const health = await (await fetch("/v1/health")).json();
    show("token-box", health.auth);
    const l = health.limits;
    $("limits").textContent = `Videos up to ${l.max_video_s} s, files up to ${l.max_upload_mb} MB. ` +
      "The file is deleted from the server once scanned.";
    $("footer").textContent = `dfdetect ${health.version}, model ${health.model}`;
  } catch (e) {
    showError("The server does not answer: " + e.message);
  }
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
  $("file").addEventListener("change", () => { if ($("file").files.length) upload($("file").files[0]); });
}

function reset() {
  clearTimeout(pollTimer);
  while (objectUrls.length) URL.revokeObjectURL(objectUrls.pop());
  show("error", false);
  show("result", false);
}

function upload(file) {
  reset();
  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/scans");
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setStatus(`Uploading ${file.name}: ${Math.round(100 * e.loaded / e.total)}%`, e.loaded / e.total);
  };
  xhr.upload.onload = () => setStatus(`Scanning ${file.name}…`, null);
  xhr.onerror = () => showError("The upload failed: the server could not be reached.");
  xhr.onload = () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status === 200) render(body);
    else if (xhr.status === 202) follow(body.url);
    else showError(body && body.error ? body.error.message : "The server answered " + xhr.status);
  };
  xhr.send(form);
}

async function follow(url) {
  try {
    const response = await fetch(url, { headers: authHeaders() });
    if (!response.ok) return showError(await errorMessage(response));
    const job = await response.json();
    if (job.status === "done" || job.status === "failed") return render(job);
    const stage = job.status === "queued" ? "Waiting in the queue" : "Working: " + (job.stage || "starting");
    setStatus(`${stage} (${job.filename}) ${Math.round(100 * job.progress)}%`, job.status === "queued" ? null : job.progress);
  } catch (e) {
    showError("Lost contact with the server: " + e.message);
    return;
  }
  pollTimer = setTimeout(() => follow(url), 1000);
}

async function render(job) {
  show("status", false);
  const result = job.result;
  if (job.status === "failed" || !result) return showError(`${job.filename}: ${job.error || "the scan failed"}`);
  const verdict = $("verdict");
  verdict.className = "verdict " + result.verdict;
  verdict.textContent = { fake: "FAKE", real: "REAL", no_face: "NO FACE FOUND", error: "ERROR" }[result.verdict];
  $("verdict-detail").textContent = describe(job, result);
  const unsure = $("unsure");
  unsure.replaceChildren(...(result.unsure ? result.unsure_reasons : []).map((r) => el("li", {}, "Unsure: " + r)));
  for (const w of result.warnings) unsure.appendChild(el("li", {}, "Warning: " + w));
  show("plot-box", result.tracks.length > 0);
  show("faces-box", job.faces.length > 0);
  if (result.tracks.length) plot(result);
  show("result", true);
  await Promise.all([renderFaces(job), renderAnnotated(job), renderDownloads(job)]).catch((e) => showError(e.message));
}

function describe(job, result) {
  const people = result.tracks.length;
  const what = result.media ? result.media.kind : "file";
  if (result.verdict === "no_face") return `${job.filename}: no face found in the ${result.frames_sampled} frames looked at.`;
  return `${job.filename}: p(fake) = ${result.probability.toFixed(3)} (calibrated probability that the ${what} is fake; ` +
    `threshold ${result.threshold.toFixed(2)}). ${people} ${people === 1 ? "person" : "people"}, ` +
    `${result.frames_sampled} frames looked at, model ${result.model ? result.model.name : "?"}.`;
}

// Each person's face scores: a line over time for a video, a bar per person for a photo.
function plot(result) {
  const W = 640, H = 260, L = 46, R = 12, T = 12, B = 40;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "p(fake) per person" });
  const y = (p) => T + (1 - p) * (H - T - B);
  const isVideo = result.media && result.media.kind === "video";
  const duration = isVideo ? Math.max(result.media.duration_s || 0, ...result.tracks.flatMap((t) => t.faces.map((f) => f.time_s)), 0.1) : 1;
  const x = isVideo ? (t) => L + (t / duration) * (W - L - R) : null;
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), stroke: "#eee" }));
    const label = svgEl("text", { x: L - 6, y: y(p) + 4, "text-anchor": "end", "font-size": 11, fill: "#555" });
    label.textContent = p.toFixed(2);
    svg.appendChild(label);
  }
  svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(result.threshold), y2: y(result.threshold),
    stroke: "#555", "stroke-dasharray": "6 4", class: "threshold" }));
  const xLabel = svgEl("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle", "font-size": 12, fill: "#555" });
  xLabel.textContent = isVideo ? "time (s)" : "person";
  svg.appendChild(xLabel);
  const legend = el("ul", { class: "legend" });
  result.tracks.forEach((track, i) => {
    const colour = COLOURS[i % COLOURS.length];
    if (isVideo) {
      const faces = [...track.faces].sort((a, b) => a.time_s - b.time_s);
      svg.appendChild(svgEl("polyline", { points: faces.map((f) => `${x(f.time_s)},${y(f.probability)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": 2, class: "series" }));
      for (const f of faces) svg.appendChild(svgEl("circle", { cx: x(f.time_s), cy: y(f.probability), r: 3, fill: colour }));
    } else {
      const slot = (W - L - R) / result.tracks.length;
      svg.appendChild(svgEl("rect", { x: L + i * slot + slot * 0.3, width: slot * 0.4, y: y(track.probability),
        height: y(0) - y(track.probability), fill: colour, class: "series" }));
    }
    const item = el("li", { style: `color: ${colour}` });
    item.textContent = `person ${track.track_id}: ${track.verdict}, p(fake) ${track.probability.toFixed(2)} ` +
      `(${track.faces.length} ${track.faces.length === 1 ? "face" : "faces"})` +
      (track.counted === false ? ", not counted in the verdict" : "");
    legend.appendChild(item);
  });
  if (isVideo) {
    for (const t of [0, duration / 2, duration]) {
      const tick = svgEl("text", { x: x(t), y: H - B + 16, "text-anchor": "middle", "font-size": 11, fill: "#555" });
      tick.textContent = t.toFixed(1);
      svg.appendChild(tick);
    }
  }
  $("plot-title").textContent = isVideo ? "Each person's score over time" : "Each person's score";
  $("plot").replaceChildren(svg, legend);
}

async function renderFaces(job) {
  const cards = await Promise.all(job.faces.map(async (face) => {
    const card = el("figure", { class: "face" });
    const pair = el("div", { class: "pair" });
    pair.appendChild(el("img", { src: await fileUrl(face.crop), alt: `face of person ${face.track_id}`, class: "crop" }));
    pair.appendChild(el("img", { src: await fileUrl(face.heatmap), alt: "where the model looked", class: "heatmap" }));
    card.appendChild(pair);
    const caption = el("figcaption");
    caption.appendChild(el("span", { class: face.verdict }, `${face.verdict} ${face.scan_probability.toFixed(2)}`));
    caption.appendChild(document.createTextNode(` person ${face.track_id}, ${face.time_s.toFixed(1)} s`));
    card.appendChild(caption);
    return card;
  }));
  $("faces").replaceChildren(...cards);
}

async function renderAnnotated(job) {
  const url = job.files.annotated;
  show("annotated-box", Boolean(url));
  if (!url) return $("annotated").replaceChildren();
  const src = await fileUrl(url);
  const media = url.endsWith(".mp4") ? el("video", { src, controls: "", playsinline: "", muted: "" })
    : el("img", { src, alt: "the photo with each face boxed and scored" });
  $("annotated").replaceChildren(media);
}

async function renderDownloads(job) {
  const links = [];
  const json = new Blob([JSON.stringify(job.result, null, 2)], { type: "application/json" });
  const jsonUrl = URL.createObjectURL(json);
  objectUrls.push(jsonUrl);
  links.push(el("a", { href: jsonUrl, download: job.filename + ".json" }, "result (JSON)"));
  if (job.files.annotated) links.push(el("a", { href: await fileUrl(job.files.annotated), download: "" }, "annotated copy"));
  if (job.files.faces_zip) links.push(el("a", { href: await fileUrl(job.files.faces_zip), download: "" }, "faces and heat maps (zip)"));
  if (job.files.timeline) links.push(el("a", { href: await fileUrl(job.files.timeline), download: "" }, "timeline (PNG)"));
  $("downloads").replaceChildren(...links);
}

init();
