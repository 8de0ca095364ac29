// The wallboard: one table per tier and per queue, the areas' office hours, pushed live; below
// them the supervisors' panel (floor.js) when the snapshot carries one.
//
// Every number sits in a cell with data-kpi (and data-value, the raw number), inside a row with
// data-queue or data-tier, so tests and other tools can read the page. The longest wait keeps
// counting between two snapshots.

import {
  LiveSocket, STATE_LABELS, STATE_TITLES, TIER_LABELS, fmtClock, fmtDuration, fmtPercent, fmtWhen, h, setToken,
  showLoginError, tokenLogin,
} from "./console.js";
import { hideFloor, renderFloor, setupFloor, tickFloor } from "./floor.js";

const OPERATOR_STATES = ["ready", "ringing", "on_call", "wrap_up", "not_ready", "logged_out"];
const PLURAL = {
  ready: "Pronti", ringing: "Squillo", on_call: "In chiamata", wrap_up: "Post-chiamata",
  not_ready: "In pausa", logged_out: "Disconnessi",
};
const AREA_LABELS = { customers: "Clienti", internal: "Servizi interni" };
const AREA_STATES = { open: "Aperto", closing_soon: "Chiude a breve", closed: "Chiuso" };

const board = document.getElementById("board");
const loginBox = document.getElementById("login");
const loginForm = document.getElementById("login-form");
const conn = document.getElementById("conn");
let socket = null;
let received = 0; // performance.now() of the last snapshot

function header(firstLabel, firstTitle) {
  return h("thead", {},
    h("tr", {},
      h("th", { rowspan: 2, title: firstTitle }, firstLabel),
      h("th", { rowspan: 2, title: "calls waiting now" }, "In attesa"),
      h("th", { rowspan: 2, title: "longest wait now (m:ss)" }, "Attesa max"),
      h("th", { rowspan: 2, title: "service level today vs target", dataset: { col: "sl" } }, "Livello servizio oggi"),
      h("th", { rowspan: 2, title: "answered today" }, "Risposte"),
      h("th", { rowspan: 2, title: "abandoned today (short abandons apart)" }, "Abbandonate"),
      h("th", { colspan: OPERATOR_STATES.length, class: "group", title: "operators by state" }, "Operatori"),
    ),
    h("tr", {},
      OPERATOR_STATES.map((s) => h("th", { title: STATE_TITLES[s] }, h("span", { class: `dot ${s}` }), PLURAL[s])),
    ),
  );
}

function cell(kpi, value, text, extra = {}) {
  const classes = [extra.class, value === 0 ? "zero" : null].filter(Boolean).join(" ");
  const dataset = { ...(extra.dataset || {}), kpi, value: value === null ? "" : String(value) };
  return h("td", { ...extra, class: classes || null, dataset }, text ?? String(value));
}

function serviceLevel(line) {
  const sl = line.service_level;
  const target = line.sl_target;
  let verdict = null;
  if (sl !== null && target !== null) verdict = sl >= target ? "good" : "bad";
  const goal = target !== null && line.sl_threshold !== null
    ? `obiettivo ${fmtPercent(target)} / ${line.sl_threshold} s`
    : (target !== null ? `obiettivo ${fmtPercent(target)}` : "soglie diverse per coda");
  const title = `${line.answered_in_threshold} di ${line.answered} risposte entro la soglia`;
  return h("td", { class: verdict, title, dataset: { kpi: "service_level", value: sl === null ? "" : String(sl) } },
    fmtPercent(sl), h("small", {}, goal));
}

function row(line, key, name, subtitle) {
  const waited = line.waiting > 0 ? line.longest_wait : 0;
  return h("tr", { dataset: { [key]: line.name } },
    h("td", { class: "name" }, name, subtitle ? h("small", {}, subtitle) : null),
    cell("waiting", line.waiting, null, { class: line.waiting > 0 ? "alert" : null }),
    cell("longest_wait", waited, fmtDuration(waited), { dataset: { base: String(waited) } }),
    serviceLevel(line),
    cell("answered", line.answered),
    cell("abandoned", line.abandoned, null, { title: `abbandoni brevi (esclusi): ${line.short_abandoned}` }),
    OPERATOR_STATES.map((s) => cell(`operators.${s}`, line.operators[s])),
  );
}

function renderAreas(areas) {
  const box = document.getElementById("areas");
  box.replaceChildren(...areas.map((area) => {
    const when = fmtWhen(area.next_change);
    let detail = "";
    if (area.state === "closed") detail = when ? `apre ${when}` : "chiuso";
    else detail = when ? `chiude alle ${when}` : "sempre aperto";
    if (area.note) detail = `${area.note} · ${detail}`;
    return h("div", { class: "badge", dataset: { area: area.name, state: area.state }, title: `${area.name}: ${area.state}` },
      h("strong", {}, `${AREA_LABELS[area.name] || area.name}: ${AREA_STATES[area.state]}`),
      h("small", { dataset: { role: "next-change" } }, detail));
  }));
}

function render(snapshot) {
  renderAreas(snapshot.areas);
  const tiers = document.getElementById("tiers");
  tiers.replaceChildren(header("Livello", "tier"), h("tbody", {},
    snapshot.tiers.map((t) => row(t, "tier", TIER_LABELS[t.name] || t.name, `${t.queues.length} code`))));
  const queues = document.getElementById("queues");
  queues.replaceChildren(header("Coda", "queue"), h("tbody", {},
    snapshot.queues.map((q) => row(q, "queue", q.title, `${q.name} · ${TIER_LABELS[q.tier] || q.tier}`))));
  const defs = snapshot.definitions || {};
  document.getElementById("definitions").replaceChildren(
    h("p", { title: defs.service_level }, "Livello di servizio oggi = risposte entro la soglia della coda / risposte, "
      + "dalla mezzanotte (ora di Roma); gli abbandoni brevi sono contati a parte e non entrano negli abbandoni."),
    h("p", { title: defs.operators }, "Operatori: chi può prendere le chiamate della coda (suo livello e competenze "
      + "di almeno un passo di escalation); per livello, tutti gli operatori del livello."),
    h("p", { title: defs.closing_soon }, "Chiude a breve: chiude entro 15 minuti."),
    h("p", {}, `Aggiornato alle ${fmtClock(new Date(snapshot.at))}`),
  );
  if (snapshot.floor) renderFloor(snapshot.floor);
  else hideFloor();
  received = performance.now();
  board.dataset.at = snapshot.at;
  board.dataset.seq = String(Number(board.dataset.seq) + 1);
}

function tick() {
  document.getElementById("clock").textContent = fmtClock();
  const elapsed = (performance.now() - received) / 1000;
  for (const td of document.querySelectorAll('td[data-kpi="longest_wait"]')) {
    const base = Number(td.dataset.base);
    if (base > 0) {
      const now = base + elapsed;
      td.dataset.value = now.toFixed(1);
      td.textContent = fmtDuration(now);
    }
  }
  if (received) tickFloor(elapsed);
}

function signOut(message = "") {
  if (socket) socket.stop();
  socket = null;
  setToken(null);
  board.hidden = true;
  hideFloor();
  loginBox.hidden = false;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  showLoginError(loginForm, message);
}

function connect() {
  loginBox.hidden = true;
  showLoginError(loginForm, "");
  socket = new LiveSocket({ view: "wallboard" }, {
    onMessage(message) {
      if (message.type === "hello") {
        document.getElementById("who").textContent = `${message.user} (${message.role})`;
        document.getElementById("logout").hidden = false;
        setupFloor(message.queues);
        board.hidden = false;
      } else if (message.type === "wallboard") {
        render(message);
      }
    },
    onState(state) {
      conn.dataset.conn = state;
      conn.textContent = { live: "in diretta", connecting: "connessione…", offline: "non connesso" }[state];
    },
    onRefused(code, reason) {
      signOut(reason);
    },
  });
  socket.start();
}

document.getElementById("logout").addEventListener("click", () => signOut());
setInterval(tick, 1000);
tick();
tokenLogin(loginForm, connect);
