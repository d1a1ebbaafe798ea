// vaelab latent explorer: plain JavaScript, no build step, nothing fetched beyond this server.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = {
  runs: [],          // summaries from /api/runs
  run: null,         // the current run's summary
  details: null,     // /api/runs/{run} of the current run (metrics, config, class names)
  panel: "samples",
  loaded: {},        // panel -> run id it was last filled for
  sampleSeed: null,
  classSeed: null,   // the Classes panel's codes: kept while the class changes
  latent: null,      // /latent of the current run
  z: null,           // the sliders' code (array of latent_dim numbers)
  decoding: false,   // a decode request is in flight
  decodeAgain: false,
  interp: { a: 0, b: 1, next: "a" },
};

// -- small helpers ---------------------------------------------------------------------------
async function api(path, options = {}, retries = 3) {
  const response = await fetch(path, options);
  // 503 with Retry-After: the server is at its limit of uploads at once and asks to be asked again
  const retryAfter = response.headers.get("retry-after");
  if (response.status === 503 && retryAfter !== null && retries > 0) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(Number(retryAfter) || 1, 10) * 1000));
    return api(path, options, retries - 1);
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `the server answered ${response.status}`);
  return body;
}

function postJSON(path, payload) {
  return api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
}

function runUrl(suffix) { return `/api/runs/${state.run.id}${suffix}`; }

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function pixImage(src, alt, size = "") {
  return el("img", { src, alt, className: `pix ${size}`.trim() });
}

function setStatus(panel, text, isError = false) {
  const node = $(`${panel}-status`);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Math.abs(value) >= 1000 ? value.toFixed(1) : value.toPrecision(digits + 1);
}

function bytes(n) { return n === null || n === undefined ? "—" : `${n.toLocaleString("en")} B`; }

function labelName(label) {
  const names = (state.details && state.details.class_names) || [];
  return label === null || label === undefined ? "" : (names[label] !== undefined ? names[label] : String(label));
}

// Run a panel's loader, showing progress and turning failures into the panel's status line.
async function guarded(panel, work) {
  setStatus(panel, "working…");
  try {
    await work();
    setStatus(panel, "");
  } catch (error) {
    setStatus(panel, error.message, true);
  }
}

// -- tabs (WAI-ARIA tabs: arrow keys move between them) -----------------------------------------
function tabs() { return Array.from(document.querySelectorAll('[role="tab"]')); }

function showPanel(panel, focus = false) {
  state.panel = panel;
  for (const tab of tabs()) {
    const selected = tab.dataset.panel === panel;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`panel-${tab.dataset.panel}`).hidden = !selected;
    if (selected && focus) tab.focus();
  }
  history.replaceState(null, "", `#${panel}`);
  if (state.run && state.loaded[panel] !== state.run.id) {
    state.loaded[panel] = state.run.id;
    LOADERS[panel]();
  }
}

function setupTabs() {
  for (const tab of tabs()) {
    tab.addEventListener("click", () => showPanel(tab.dataset.panel));
    tab.addEventListener("keydown", (event) => {
      const all = tabs().filter((t) => !t.hidden);  // the Classes tab only for label-conditioned runs
      const i = all.indexOf(tab);
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: all.length - 1 };
      if (event.key in moves) {
        event.preventDefault();
        showPanel(all[(moves[event.key] + all.length) % all.length].dataset.panel, true);
      }
    });
  }
}

// -- runs ------------------------------------------------------------------------------------
async function selectRun(id) {
  const run = state.runs.find((r) => r.id === Number(id));
  // Everything about the run arrives before any panel may use it.
  const details = await api(`/api/runs/${run.id}`);
  Object.assign(state, { run, details, loaded: {}, latent: null, z: null, sampleSeed: null, classSeed: null,
                         interp: { a: 0, b: Math.min(1, run.test_images - 1), next: "a" } });
  $("run-select").value = String(run.id);
  $("run-summary").textContent = `${run.model} on ${run.data} · latent ${run.latent_dim} · images ` +
    `${run.image_shape.join("×")}` + (run.test_neg_elbo !== null ? ` · test −ELBO ${run.test_neg_elbo.toFixed(1)} nats` : "");
  $("tab-classes").hidden = !run.label_conditioned;
  if (!run.label_conditioned && state.panel === "classes") state.panel = "samples";
  fillClassPicker();
  document.body.dataset.run = String(run.id);  // tells tests and screenshots the page is ready
  showPanel(state.panel);
}

async function start() {
  setupTabs();
  wireControls();
  try {
    state.runs = (await api("/api/runs")).runs;
  } catch (error) {
    $("run-summary").textContent = `cannot reach the server: ${error.message}`;
    return;
  }
  const select = $("run-select");
  for (const r of state.runs) select.append(el("option", { value: String(r.id), text: `${r.id}: ${r.name}` }));
  select.addEventListener("change", () => selectRun(select.value));
  const wanted = location.hash.slice(1);
  if (LOADERS[wanted]) state.panel = wanted;
  await selectRun(state.runs[0].id);
}

// -- Samples ---------------------------------------------------------------------------------
async function loadSamples(fresh = true) {
  await guarded("samples", async () => {
    const temperature = Number($("samples-temperature").value);
    const n = Number($("samples-count").value);
    const result = await postJSON(runUrl("/samples"), { n, temperature, seed: fresh ? null : state.sampleSeed });
    state.sampleSeed = result.seed;
    const grid = $("samples-grid");
    grid.replaceChildren(...result.images.map((src, i) => pixImage(src, `sample ${i + 1}`)));
    grid.dataset.seed = String(result.seed);
  });
}

// -- Classes (label-conditioned runs) ----------------------------------------------------------
function fillClassPicker() {
  const names = (state.details && state.details.class_names) || [];
  $("class-pick").replaceChildren(...names.map((name, k) => el("option", { value: String(k), text: `${k}: ${name}` })));
}

// One seed per set of codes: a new class re-decodes the same z; "New codes" draws others.
async function loadClasses(fresh = true) {
  await guarded("classes", async () => {
    const label = Number($("class-pick").value);
    const seed = fresh || state.classSeed === null ? null : state.classSeed;
    const result = await postJSON(runUrl("/samples"), { n: 16, temperature: 1, seed, label });
    state.classSeed = result.seed;
    const grid = $("class-grid");
    grid.replaceChildren(...result.images.map((src, i) => pixImage(src, `${labelName(label)} sample ${i + 1}`)));
    grid.dataset.seed = String(result.seed);
    grid.dataset.label = String(label);
  });
}

// -- Sliders ---------------------------------------------------------------------------------
async function loadSliders() {
  await guarded("sliders", async () => {
    state.latent = await api(runUrl("/latent"));
    state.z = state.latent.origin.slice();
    buildSliders();
    await decodeNow();
  });
}

function buildSliders() {
  const { dims, low, high, score, score_name } = state.latent;
  const list = $("slider-list");
  list.replaceChildren();
  for (const d of dims) {
    const id = `slider-z${d}`;
    const input = el("input", { type: "range", id, min: String(low[d]), max: String(high[d]),
                                step: String((high[d] - low[d]) / 200), "aria-label": `latent dimension ${d}` });
    input.value = String(state.z[d]);
    input.dataset.dim = String(d);
    const value = el("output", { for: id, text: state.z[d].toFixed(2) });
    input.addEventListener("input", () => {
      state.z[d] = Number(input.value);
      value.textContent = state.z[d].toFixed(2);
      requestDecode();
    });
    list.append(el("label", { for: id, text: `z${d} · ${score_name} ${score[d].toFixed(2)}` }), input, value);
  }
}

function syncSliders() {
  for (const input of $("slider-list").querySelectorAll("input")) {
    const d = Number(input.dataset.dim);
    input.value = String(state.z[d]);
    input.nextElementSibling.textContent = state.z[d].toFixed(2);
  }
}

// At most one decode in flight; moves made meanwhile are folded into one follow-up request.
function requestDecode() {
  if (state.decoding) { state.decodeAgain = true; return; }
  decodeNow();
}

async function decodeNow() {
  state.decoding = true;
  try {
    do {
      state.decodeAgain = false;
      const result = await postJSON(runUrl("/decode"), { z: state.z });
      $("slider-image").src = result.image;
      $("slider-timing").textContent = `decoded in ${result.ms.toFixed(1)} ms on the server`;
    } while (state.decodeAgain);
    setStatus("sliders", "");
  } catch (error) {
    setStatus("sliders", error.message, true);
  } finally {
    state.decoding = false;
  }
}

function gaussian() {  // one N(0, 1) draw (Box–Muller)
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}

async function slidersFromImage(index) {
  const detail = await api(runUrl(`/images/${index}`));
  state.z = detail.code.slice();
  syncSliders();
  await decodeNow();
}

// -- Latent map ------------------------------------------------------------------------------
async function loadMap() {
  await guarded("map", async () => {
    const n = Number($("map-count").value);
    const data = await api(runUrl(`/map?n=${n}`));
    drawMap(data);
  });
}

function drawMap(data) {
  const svg = $("map");
  const size = 600, pad = 20;
  const span = (values) => {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    return [lo, hi];
  };
  const [x0, x1] = span(data.x), [y0, y1] = span(data.y);
  const sx = (v) => pad + (v - x0) / (x1 - x0) * (size - 2 * pad);
  const sy = (v) => size - pad - (v - y0) / (y1 - y0) * (size - 2 * pad);
  const circles = data.x.map((x, i) => {
    const label = data.labels ? data.labels[i] : null;
    const c = document.createElementNS(SVG_NS, "circle");
    c.setAttribute("cx", sx(x).toFixed(1));
    c.setAttribute("cy", sy(data.y[i]).toFixed(1));
    c.setAttribute("r", "3.2");
    c.setAttribute("fill", label === null ? PALETTE[0] : PALETTE[label % PALETTE.length]);
    c.dataset.index = String(i);
    if (label !== null) c.dataset.label = String(label);
    return c;
  });
  svg.replaceChildren(...circles);
  svg.dataset.points = String(circles.length);
  const axes = data.projection === "pca"
    ? `PCA of the ${state.run.latent_dim}-D latent means: the axes hold ${(100 * data.explained[0]).toFixed(0)} % ` +
      `and ${(100 * data.explained[1]).toFixed(0)} % of their variance`
    : "the latent means themselves (the latent space has at most 2 dimensions)";
  $("map-caption").textContent = `${data.n} of ${data.available} test images; ${axes}. Hover for the image, click ` +
    "for its reconstruction.";
  const legend = $("map-legend");
  legend.replaceChildren();
  if (data.labels) {
    const present = Array.from(new Set(data.labels)).sort((a, b) => a - b);
    for (const label of present) {
      const item = el("span", { text: data.class_names[label] !== undefined ? data.class_names[label] : String(label) });
      item.style.setProperty("--swatch", PALETTE[label % PALETTE.length]);
      legend.append(item);
    }
  }
}

function mapPoint(event) {
  const target = event.target;
  return target instanceof SVGCircleElement ? target : null;
}

function setupMapEvents() {
  const svg = $("map"), tip = $("map-tooltip"), wrap = svg.parentElement;
  svg.addEventListener("mouseover", (event) => {
    const point = mapPoint(event);
    if (!point) return;
    const index = point.dataset.index;
    tip.querySelector("img").src = runUrl(`/thumbnails/${index}`);
    tip.querySelector("img").alt = `test image ${index}`;
    tip.querySelector("span").textContent = `#${index} ${labelName(point.dataset.label === undefined ? null : Number(point.dataset.label))}`;
    const box = wrap.getBoundingClientRect();
    tip.style.left = `${event.clientX - box.left + 12}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
    tip.hidden = false;
  });
  svg.addEventListener("mouseout", (event) => { if (mapPoint(event)) tip.hidden = true; });
  svg.addEventListener("click", (event) => {
    const point = mapPoint(event);
    if (point) showMapDetail(Number(point.dataset.index));
  });
}

async function showMapDetail(index) {
  await guarded("map", async () => {
    const detail = await api(runUrl(`/images/${index}`));
    for (const c of $("map").querySelectorAll("circle.selected")) c.classList.remove("selected");
    const point = $("map").querySelector(`circle[data-index="${index}"]`);
    if (point) point.classList.add("selected");
    $("map-index").value = String(index);
    const open = el("button", { text: "Explore in sliders" });
    open.addEventListener("click", async () => {
      showPanel("sliders");
      if (!state.latent) await loadSliders();
      state.z = detail.code.slice();
      syncSliders();
      await decodeNow();
    });
    $("map-detail").replaceChildren(
      el("h2", { text: `Test image #${index}${detail.label_name !== null ? ` · ${detail.label_name}` : ""}` }),
      el("div", { className: "pairs" }, [
        el("figure", {}, [pixImage(detail.image, `test image ${index}`, "medium"), el("figcaption", { text: "image" })]),
        el("figure", {}, [pixImage(detail.reconstruction, `reconstruction of test image ${index}`, "medium"),
                          el("figcaption", { text: `reconstruction · MSE ${detail.mse.toFixed(4)}` })]),
      ]),
      el("p", {}, [open]),
    );
  });
}

// -- Interpolate -----------------------------------------------------------------------------
async function loadInterpolate() {
  const gallery = $("interp-gallery");
  const count = Math.min(24, state.run.test_images);
  gallery.replaceChildren();
  for (let i = 0; i < count; i++) {
    const button = el("button", { type: "button", "aria-label": `pick test image ${i}` }, [
      pixImage(runUrl(`/thumbnails/${i}`), `test image ${i}`)]);
    button.dataset.index = String(i);
    button.addEventListener("click", () => pickInterpolationEnd(i));
    gallery.append(button);
  }
  markInterpolationEnds();
  await interpolateNow();
}

function pickInterpolationEnd(index) {
  state.interp[state.interp.next] = index;
  state.interp.next = state.interp.next === "a" ? "b" : "a";
  markInterpolationEnds();
  if (state.interp.next === "a") interpolateNow();
}

function markInterpolationEnds() {
  for (const button of $("interp-gallery").children) {
    const i = Number(button.dataset.index);
    button.classList.toggle("is-a", i === state.interp.a);
    button.classList.toggle("is-b", i === state.interp.b);
  }
  $("interp-a").src = runUrl(`/thumbnails/${state.interp.a}`);
  $("interp-b").src = runUrl(`/thumbnails/${state.interp.b}`);
}

async function interpolateNow() {
  await guarded("interpolate", async () => {
    const steps = Number($("interp-steps").value);
    const result = await postJSON(runUrl("/interpolate"), {
      a: state.interp.a, b: state.interp.b, steps, slerp: $("interp-slerp").checked });
    $("interp-strip").replaceChildren(...result.images.map((src, i) => pixImage(src, `frame ${i + 1} of ${steps}`)));
  });
}

// -- Your image ------------------------------------------------------------------------------
async function uploadImage() {
  const file = $("upload-file").files[0];
  if (!file) return;
  await guarded("upload", async () => {
    const form = new FormData();
    form.append("file", file);
    const r = await api(runUrl("/upload"), { method: "POST", body: form });
    renderUpload(r);
  });
}

function renderUpload(r) {
  const s = r.sizes;
  const figures = [
    el("figure", {}, [pixImage(r.image, "your image as the model sees it", "medium"),
                      el("figcaption", { text: "your image (model's format)" })]),
    el("figure", {}, [pixImage(r.reconstruction, "its reconstruction", "medium"),
                      el("figcaption", { text: `reconstruction · MSE ${r.mse.toFixed(4)}` })]),
  ];
  if (r.codec_image) {
    figures.push(el("figure", {}, [pixImage(r.codec_image, "decoded from the compressed bitstream", "medium"),
                                   el("figcaption", { text: `codec · ${bytes(s.codec)}` })]));
  }
  const flagged = r.anomaly.filter((a) => a.is_anomaly).length;
  const anomaly = el("table", { className: "data", id: "upload-anomaly" }, [
    el("tr", {}, ["score", "value", "threshold", "verdict"].map((h) => el("th", { text: h }))),
    ...r.anomaly.map((a) => {
      const verdict = el("span", { className: a.is_anomaly ? "verdict-bad" : "verdict-good",
                                   text: a.is_anomaly ? "anomalous" : "typical" });
      const tr = el("tr", {}, [a.score_name, fmt(a.score), fmt(a.threshold), verdict].map((v) => {
        const td = el("td");
        td.append(v);
        return td;
      }));
      tr.title = a.meaning;
      return tr;
    }),
  ]);
  const fit = r.anomaly[0];
  const anomalyNote = `Flagged by ${flagged} of ${r.anomaly.length} score${r.anomaly.length > 1 ? "s" : ""}. ` +
    `A threshold is the ${Math.round(100 * fit.quantile)}th percentile of ${fmt(fit.fit_images)} validation ` +
    "images' scores; higher is more anomalous. " + r.anomaly.map((a) => `${a.score_name}: ${a.meaning}.`).join(" ");
  const codecRow = s.codec !== null
    ? row("vaelab codec", `${bytes(s.codec)} (header ${bytes(s.codec_header)}) · PSNR ${fmt(s.codec_psnr)} dB`)
    : row("vaelab codec", s.codec_error || "not available");
  const webpRow = s.webp !== null
    ? row("WebP lossy", `${bytes(s.webp)} · quality ${s.webp_quality} · PSNR ${fmt(s.webp_psnr)} dB`)
    : row("WebP lossy", s.codec !== null ? "cannot reach the codec's PSNR" : "—");
  const sizes = el("table", { className: "data", id: "upload-sizes" }, [
    row("raw pixels", bytes(s.raw)), row("PNG (lossless)", bytes(s.png)),
    row("WebP lossless", bytes(s.webp_lossless)), codecRow, webpRow]);
  const notes = r.notices.length ? `${r.name}: ${r.notices.join("; ")}.` : `${r.name}: already in the model's format.`;
  $("upload-result").replaceChildren(el("div", { className: "result" }, [
    el("p", { className: "muted", text: notes }),
    el("div", { className: "pairs" }, figures),
    el("div", { className: "split" }, [
      el("div", {}, [el("h2", { text: "Anomaly scores" }), anomaly, el("p", { className: "muted", text: anomalyNote })]),
      el("div", {}, [el("h2", { text: "Compressed size" }), sizes, el("p", { className: "muted", text: s.settings })]),
    ]),
  ]));
}

function row(name, value) {
  const cell = el("td");
  cell.append(value);
  return el("tr", {}, [el("th", { text: name }), cell]);
}

// -- Run -------------------------------------------------------------------------------------
async function loadRun() {
  await guarded("run", async () => {
    const d = state.details;
    const table = $("run-table");
    table.replaceChildren(el("tr", {}, ["", "name", "model", "data", "latent", "test −ELBO (nats)"].map(
      (h) => el("th", { text: h }))));
    for (const r of state.runs) {
      const button = el("button", { type: "button", text: r.id === state.run.id ? "shown" : "switch" });
      button.disabled = r.id === state.run.id;
      button.addEventListener("click", () => selectRun(r.id));
      const tr = el("tr", { className: r.id === state.run.id ? "current" : "" }, [button, r.name, r.model, r.data,
        String(r.latent_dim), fmt(r.test_neg_elbo)].map((v) => { const td = el("td"); td.append(v); return td; }));
      table.append(tr);
    }
    $("run-metrics").replaceChildren(...Object.entries(d.metrics).map(
      ([k, v]) => row(k.replaceAll("_", " "), fmt(v))));
    drawCurve(d.curve);
    const sections = new Map();
    for (const item of d.config) {
      if (!sections.has(item.section)) sections.set(item.section, []);
      sections.get(item.section).push(item);
    }
    // model and data are what people look for first; the long [train] section starts folded
    const folded = (section) => section === "train" ? {} : { open: "" };
    $("run-config").replaceChildren(...Array.from(sections, ([section, items]) => el("details", folded(section), [
      el("summary", { text: section ? `[${section}]` : "format" }),
      el("table", { className: "data" }, items.map((item) => {
        const tr = row(item.key, JSON.stringify(item.value));
        tr.title = item.help;
        return tr;
      })),
    ])));
  });
}

function drawCurve(curve) {
  const svg = $("run-curve");
  svg.replaceChildren();
  const series = [["train_loss", "#2f6fdf", "train"], ["val_loss", "#e07b00", "validation"]];
  const values = curve.flatMap((p) => series.map(([k]) => p[k])).filter((v) => v !== null && v !== undefined);
  if (curve.length < 1 || values.length < 1) {
    svg.append(svgText(20, 110, "no per-epoch losses recorded"));
    return;
  }
  const W = 420, H = 220, L = 50, R = 10, T = 12, B = 28;
  const lo = Math.min(...values), hi = Math.max(...values) + 1e-9;
  const e0 = curve[0].epoch, e1 = Math.max(curve[curve.length - 1].epoch, e0 + 1);
  const x = (e) => L + (e - e0) / (e1 - e0) * (W - L - R);
  const y = (v) => T + (hi - v) / (hi - lo) * (H - T - B);
  for (const [key, color, name] of series) {
    const pts = curve.filter((p) => p[key] !== null).map((p) => `${x(p.epoch).toFixed(1)},${y(p[key]).toFixed(1)}`);
    if (!pts.length) continue;
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "2");
    svg.append(line, svgText(W - R - 80, key === "train_loss" ? T + 12 : T + 26, `— ${name}`, color));
  }
  svg.append(svgText(4, T + 8, fmt(hi)), svgText(4, H - B, fmt(lo)), svgText(L, H - 8, `epoch ${e0}`),
             svgText(W - R - 60, H - 8, `epoch ${e1}`));
}

function svgText(x, y, text, color) {
  const node = document.createElementNS(SVG_NS, "text");
  node.setAttribute("x", String(x));
  node.setAttribute("y", String(y));
  if (color) node.setAttribute("fill", color);
  node.textContent = text;
  return node;
}

// -- wiring ----------------------------------------------------------------------------------
const LOADERS = { samples: () => loadSamples(true), classes: () => loadClasses(true), sliders: loadSliders, map: loadMap,
                  interpolate: loadInterpolate, upload: async () => {}, run: loadRun };

function wireControls() {
  $("samples-new").addEventListener("click", () => loadSamples(true));
  $("samples-temperature").addEventListener("input", () => {
    $("samples-temperature-value").textContent = Number($("samples-temperature").value).toFixed(2);
  });
  $("samples-temperature").addEventListener("change", () => loadSamples(false));
  $("samples-count").addEventListener("change", () => loadSamples(false));

  $("class-pick").addEventListener("change", () => loadClasses(false));
  $("class-new").addEventListener("click", () => loadClasses(true));

  $("slider-centre").addEventListener("click", () => { state.z = state.latent.origin.slice(); syncSliders(); decodeNow(); });
  $("slider-random-prior").addEventListener("click", () => {
    const { origin, low, high } = state.latent;
    state.z = origin.map((m, d) => m + gaussian() * (high[d] - low[d]) / 6);  // the range is ±3 std
    syncSliders();
    decodeNow();
  });
  $("slider-random-image").addEventListener("click", () =>
    guarded("sliders", () => slidersFromImage(Math.floor(Math.random() * state.run.test_images))));

  $("map-draw").addEventListener("click", loadMap);
  $("map-show").addEventListener("click", () => showMapDetail(Number($("map-index").value)));
  $("map-index").addEventListener("keydown", (event) => {
    if (event.key === "Enter") showMapDetail(Number($("map-index").value));
  });
  setupMapEvents();

  $("interp-go").addEventListener("click", interpolateNow);
  $("upload-file").addEventListener("change", uploadImage);
}

document.addEventListener("DOMContentLoaded", start);
