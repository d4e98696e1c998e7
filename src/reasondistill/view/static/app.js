// reasondistill view: the page asks the server for one page of rows at a time and for one row
// when it is opened. Run text is only ever put in the page as text (textContent / text nodes),
// never parsed as HTML.
"use strict";

const LIMIT = 50;
const FILTERS = ["q", "kind", "result", "hinted", "source", "fate", "dmin", "dmax", "lmin", "lmax", "sort"];
const MODELS = [["teacher", "teacher"], ["student_before", "student (before)"], ["student_after", "student (after)"]];
const state = { offset: 0, matched: 0, items: [], selected: null, open: null, seq: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, cls, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(passed) {
  if (passed === true) return el("span", "badge pass", "correct");
  if (passed === false) return el("span", "badge fail", "incorrect");
  return el("span", "badge none", "unverified");
}

function fmt(x, digits = 2) {
  return x === null || x === undefined ? "–" : (typeof x === "number" ? +x.toFixed(digits) : String(x));
}

// the text with every occurrence of the search term wrapped in <mark>, built from text nodes
function highlighted(tag, cls, text) {
  const node = el(tag, cls);
  const q = $("q").value.trim().toLowerCase();
  if (!q) { node.textContent = text; return node; }
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(q); i >= 0; i = lower.indexOf(q, at)) {
    node.append(document.createTextNode(text.slice(at, i)), el("mark", null, text.slice(i, i + q.length)));
    at = i + q.length;
  }
  node.append(document.createTextNode(text.slice(at)));
  return node;
}

function params() {
  const p = new URLSearchParams();
  for (const name of FILTERS) {
    const v = $(name).value.trim();
    if (v !== "") p.set(name, v);
  }
  return p;
}

function saveHash() {
  const p = params();
  if (state.offset) p.set("offset", state.offset);
  if (state.open) p.set("open", state.open);
  history.replaceState(null, "", "#" + p.toString());
}

function loadHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const name of FILTERS) if (p.has(name)) $(name).value = p.get(name);
  state.offset = parseInt(p.get("offset") || "0", 10) || 0;
  return p.get("open");
}

async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

async function loadMeta() {
  const meta = await getJSON("/api/meta");
  $("run").textContent = `${meta.run} · ${meta.rows.toLocaleString()} traces and answers · ` +
    `${meta.problems.toLocaleString()} problems`;
  $("notes").textContent = meta.notes.length ? meta.notes.join("; ") : "";
  for (const [id, values] of [["source", meta.sources], ["fate", meta.fates]]) {
    const select = $(id);
    for (const v of values) select.append(el("option", null, v));
  }
}

async function loadRows() {
  const seq = ++state.seq;
  const p = params();
  p.set("offset", state.offset);
  p.set("limit", LIMIT);
  let page;
  try {
    page = await getJSON("/api/rows?" + p.toString());
  } catch (err) {
    $("matched").replaceChildren(el("span", "error", err.message));
    return;
  }
  if (seq !== state.seq) return; // a newer request went out meanwhile
  state.items = page.items;
  state.matched = page.matched;
  const first = page.matched ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  $("matched").textContent = `${page.matched.toLocaleString()} of ${page.total.toLocaleString()} match` +
    ` (server ${page.ms} ms)`;
  $("page").textContent = `${first.toLocaleString()}–${last.toLocaleString()}`;
  $("prev").disabled = page.offset <= 0;
  $("next").disabled = last >= page.matched;
  const body = $("list").tBodies[0];
  body.replaceChildren(...page.items.map((item, i) => {
    const tr = el("tr", item.id === state.open ? "selected" : null,
      el("td", null, highlighted("span", "prompt", item.prompt || item.problem_id),
        el("span", "pid", `${item.problem_id} · ${item.kind === "trace" ? "trace" : "held-out"}` +
          (item.sample_idx ? ` #${item.sample_idx}` : ""))),
      el("td", null, item.source),
      el("td", null, badge(item.passed), item.hinted ? el("span", "badge hint", "hinted") : null),
      el("td", null, fmt(item.tokens)),
      el("td", null, fmt(item.difficulty)),
      el("td", null, item.fate || "–"));
    tr.dataset.index = i;
    tr.addEventListener("click", () => openRow(item.id, i));
    return tr;
  }));
  saveHash();
}

function answerColumn(title, entry, current) {
  const col = el("div", current ? "col current" : "col", el("h3", null, title));
  if (!entry) {
    col.append(el("p", "missing", "no answer on this problem"));
    return col;
  }
  col.append(el("div", "kv", badge(entry.passed), entry.hinted ? el("span", "badge hint", "hinted") : null,
    entry.finish === "length" ? el("span", "badge none", "truncated") : null,
    "answer ", el("code", null, entry.answer ?? "none"), ` · ${fmt(entry.tokens)} tokens`));
  if (entry.n_samples > 1) col.append(el("div", "kv muted", `greedy shown; ${entry.n_passed}/${entry.n_samples} samples correct`));
  col.append(highlighted("pre", "text", entry.text));
  return col;
}

async function openRow(id, index) {
  state.open = id;
  state.selected = index ?? null;
  for (const tr of $("list").tBodies[0].rows) tr.classList.toggle("selected", state.items[tr.dataset.index]?.id === id);
  saveHash();
  const pane = $("detail-pane");
  let d;
  try {
    d = await getJSON("/api/row?id=" + encodeURIComponent(id));
  } catch (err) {
    pane.replaceChildren(el("p", "error", err.message));
    return;
  }
  if (state.open !== id) return;
  const row = d.row, prob = d.problem;
  const problemCard = el("div", "card",
    el("h2", null, `Problem ${prob.id}`),
    el("div", "kv", `${prob.split === "eval" ? "held-out" : prob.split} problem · gold answer `, el("code", null, prob.answer),
      prob.pass_rate !== null && prob.pass_rate !== undefined ?
        ` · teacher pass rate ${fmt(prob.pass_rate)} (difficulty ${fmt(prob.difficulty)})` : ""),
    highlighted("pre", "text", prob.prompt));
  const rowCard = el("div", "card", el("h2", null, row.kind === "trace" ? "Teacher trace" : "Held-out answer"),
    el("div", "kv", el("code", "rowid", row.id), ` · ${row.source} · `, badge(row.passed),
      row.hinted ? el("span", "badge hint", "hinted (saw the gold answer)") : null,
      row.reason ? ` verifier: ${row.reason}` : "", row.fate ? ` · curation: ${row.fate}` : ""));
  // side by side: the teacher's trace (this one, or its held-out answer), the student before and after
  const teacher = row.kind === "trace" ? row : d.answers.teacher;
  const side = el("div", "side",
    answerColumn(row.kind === "trace" ? `teacher trace (${row.source})` : "teacher", teacher,
      row.kind === "trace" || row.source === "teacher"),
    answerColumn("student (before)", d.answers.student_before, row.source === "student_before"),
    answerColumn("student (after)", d.answers.student_after, row.source === "student_after"));
  const parts = [problemCard, rowCard, side];
  if (row.kind === "trace" && !d.answers.student_before && !d.answers.student_after) {
    parts.push(el("p", "muted", "Students are evaluated on held-out problems; this is a training problem."));
  }
  const others = d.traces.filter((t) => t.id !== row.id);
  if (others.length) {
    const list = el("ul", "others");
    for (const t of others) {
      const li = el("li", null, badge(t.passed), t.hinted ? el("span", "badge hint", "hinted") : null,
        el("code", null, t.id), ` · ${fmt(t.tokens)} tokens · ${t.fate || "not curated"}`);
      li.addEventListener("click", () => openRow(t.id));
      list.append(li);
    }
    parts.push(el("div", "card", el("h3", null, `Other teacher traces of this problem (${d.n_traces - 1})`), list));
  }
  pane.replaceChildren(...parts);
  pane.scrollTop = 0;
}

let timer = null;
function refilter(delay = 0) {
  clearTimeout(timer);
  timer = setTimeout(() => { state.offset = 0; loadRows(); }, delay);
}

function move(step) {
  const i = (state.selected ?? -1) + step;
  if (i >= 0 && i < state.items.length) openRow(state.items[i].id, i);
}

async function main() {
  try {
    await loadMeta();
  } catch (err) {
    $("run").replaceChildren(el("span", "error", err.message));
    return;
  }
  const open = loadHash(); // after the options exist, so a saved teacher or curation filter applies
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); refilter(); });
  $("q").addEventListener("input", () => refilter(250));
  for (const name of FILTERS.filter((n) => n !== "q")) $(name).addEventListener("change", () => refilter());
  $("reset").addEventListener("click", () => { for (const n of FILTERS) $(n).value = ""; refilter(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - LIMIT); loadRows(); });
  $("next").addEventListener("click", () => { state.offset += LIMIT; loadRows(); });
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === "j" || e.key === "ArrowDown") { move(1); e.preventDefault(); }
    if (e.key === "k" || e.key === "ArrowUp") { move(-1); e.preventDefault(); }
    if (e.key === "/") { $("q").focus(); e.preventDefault(); }
  });
  await loadRows();
  if (open) openRow(open);
}

main();
