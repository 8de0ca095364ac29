// The supervisors' panel under the wallboard ("floor"): every operator with a force-state button
// each, the conversations in progress with Listen / Whisper / Barge, and the calls waiting with a
// "move to queue" choice. The data is the snapshot's `floor` (only supervisors and admins get it);
// every action is a REST call with the session's token, and a refusal shows the API's message.
//
// Rows are kept by key (operator id, call id) between snapshots, so a select the supervisor is
// using is not rebuilt under their hand every few seconds. Tests and tools read the rows by
// tr[data-operator][data-state], tr[data-call][data-queue] and the buttons' data-force,
// data-monitor, data-move.

import { REASON_LABELS, STATE_LABELS, STATE_TITLES, api, fmtDuration, h, toast } from "./console.js";

const PHONE_KEY = "unico.console.supervisor-phone";

const FORCE = {
  ready: { label: "Pronto", title: "force ready", aria: "Forza pronto" },
  not_ready: { label: "Pausa", title: "force a pause (reason: supervisor)", aria: "Metti in pausa" },
  logged_out: { label: "Disconnetti", title: "force logout", aria: "Disconnetti dal servizio" },
};

const MODES = {
  listen: { label: "Ascolta", title: "listen: you hear both, nobody hears you", aria: "Ascolta" },
  whisper: { label: "Suggerisci", title: "whisper: only the operator hears you", aria: "Suggerisci all'operatore" },
  barge: { label: "Intervieni", title: "barge: all three hear each other", aria: "Intervieni" },
};

const $ = (id) => document.getElementById(id);
let queues = []; // [{name, title, tier}] from hello
let phoneTouched = false;

/** The queues the move select offers (hello's list); call once per connection. */
export function setupFloor(queueList) {
  queues = queueList;
  const phone = $("sup-phone");
  phone.value = sessionStorage.getItem(PHONE_KEY) || phone.value;
  phoneTouched = Boolean(phone.value);
}

export function hideFloor() {
  $("floor").hidden = true;
}

function queueTitle(name) {
  const queue = queues.find((q) => q.name === name);
  return queue ? queue.title : name;
}

/** Replace a cell's content; like h(), nulls are skipped and arrays flattened. */
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function showError(text) {
  $("floor-error").textContent = text;
  if (text) toast(text, "error");
}

/** Run one REST action from `button`: disabled meanwhile, the API's error shown on failure. */
async function act(button, method, path, body, done) {
  button.disabled = true;
  showError(""); // a new attempt: the last refusal no longer applies
  try {
    const answer = await api(method, path, body);
    toast(done(answer));
  } catch (error) {
    showError(error.message);
  } finally {
    button.disabled = false; // the next snapshot sets it from the new state
  }
}

/** Reuse the rows of `tbody` by key; create new ones, drop the gone ones, keep order. */
function sync(tbody, items, keyOf, make, update) {
  const existing = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
  const keep = new Set();
  items.forEach((item, index) => {
    const key = keyOf(item);
    let tr = existing.get(key);
    if (!tr) {
      tr = make(item);
      tr.dataset.key = key;
    }
    update(tr, item);
    keep.add(tr);
    // moving a row only when it is out of place: moving it would drop the focus inside it
    if (tbody.rows[index] !== tr) tbody.insertBefore(tr, tbody.rows[index] || null);
  });
  for (const tr of [...tbody.rows]) if (!keep.has(tr)) tr.remove();
}

function setTick(td, seconds) {
  td.dataset.tick = seconds === null || seconds === undefined ? "" : String(seconds);
  td.dataset.value = td.dataset.tick;
  td.textContent = seconds === null || seconds === undefined ? "—" : fmtDuration(seconds);
}

// --- operators --------------------------------------------------------------------------------

function forceEnabled(target, op) {
  if (op.state === "on_call") return false; // only a real call ends a conversation
  if (target === "not_ready") return !(op.state === "not_ready" && op.reason === "supervisor");
  return op.state !== target;
}

function makeOperator(op) {
  const buttons = Object.entries(FORCE).map(([target, f]) => h("button", {
    type: "button", title: f.title, dataset: { force: target },
    onclick: (event) => {
      const current = event.currentTarget.closest("tr");
      const body = target === "not_ready" ? { state: target, reason: "supervisor" } : { state: target };
      act(event.currentTarget, "POST", `/api/agents/${encodeURIComponent(current.dataset.operator)}/force`, body,
        (answer) => `${answer.name || answer.id}: ${STATE_LABELS[answer.state] || answer.state}`);
    },
  }, f.label));
  return h("tr", { dataset: { operator: op.id } },
    h("td", { class: "name" }), h("td", {}), h("td", { class: "num" }), h("td", {}),
    h("td", { class: "buttons" }, buttons));
}

function updateOperator(tr, op) {
  tr.dataset.state = op.state;
  tr.dataset.reason = op.reason || "";
  const [name, state, since, call, actions] = tr.cells;
  fill(name, op.name, h("small", {}, `${op.id} · ${op.site}`));
  const reason = op.reason ? h("small", { dataset: { reason: op.reason } }, REASON_LABELS[op.reason] || op.reason) : null;
  fill(state, h("span", { class: `dot ${op.state}` }), h("span", { title: STATE_TITLES[op.state] },
    STATE_LABELS[op.state] || op.state), reason, op.registered ? null : h("small", {}, "telefono non registrato"));
  setTick(since, op.in_state);
  fill(call, op.call_id
    ? [h("span", { class: "mono" }, op.call_id), h("small", {}, op.queue ? queueTitle(op.queue) : "—")]
    : "—");
  for (const button of actions.querySelectorAll("[data-force]")) {
    const target = button.dataset.force;
    button.disabled = !forceEnabled(target, op);
    button.setAttribute("aria-label", `${FORCE[target].aria}: ${op.name}`);
  }
}

// --- conversations ----------------------------------------------------------------------------

function phoneId() {
  const input = $("sup-phone");
  const value = input.value.trim();
  if (!value) {
    showError("Indica prima il tuo telefono (es. sup9001): è quello che squilla.");
    input.focus();
    return null;
  }
  sessionStorage.setItem(PHONE_KEY, value);
  return value;
}

function makeTalking(call) {
  const buttons = Object.entries(MODES).map(([mode, m]) => h("button", {
    type: "button", title: m.title, dataset: { monitor: mode },
    onclick: (event) => {
      const supervisor = phoneId();
      if (!supervisor) return;
      const callId = event.currentTarget.closest("tr").dataset.call;
      act(event.currentTarget, "POST", `/api/calls/${encodeURIComponent(callId)}/monitor`, { mode, supervisor },
        () => `${m.label}: squilla il telefono ${supervisor}`);
    },
  }, m.label));
  return h("tr", { dataset: { call: call.call_id } },
    h("td", { class: "mono" }), h("td", {}), h("td", {}), h("td", { class: "num" }),
    h("td", { class: "buttons" }, buttons));
}

function updateTalking(tr, call) {
  tr.dataset.operator = call.operator;
  tr.dataset.queue = call.queue || "";
  const [caller, operator, queue, talking, actions] = tr.cells;
  fill(caller, call.caller, h("small", {}, call.call_id));
  fill(operator, call.operator_name, h("small", {}, call.operator));
  queue.textContent = call.queue ? queueTitle(call.queue) : "—";
  setTick(talking, call.talking);
  for (const button of actions.querySelectorAll("[data-monitor]")) {
    button.setAttribute("aria-label", `${MODES[button.dataset.monitor].aria}: ${call.operator_name} con ${call.caller}`);
  }
}

// --- waiting calls ----------------------------------------------------------------------------

function makeWaiting(call) {
  const select = h("select", { dataset: { move: "" } });
  const button = h("button", {
    type: "button", title: "move the caller to the chosen queue", dataset: { moveGo: "" },
    onclick: (event) => {
      const tr = event.currentTarget.closest("tr");
      const target = tr.querySelector("select[data-move]").value;
      if (!target) return;
      act(event.currentTarget, "POST", `/api/calls/${encodeURIComponent(tr.dataset.call)}/move`, { queue: target },
        () => `Chiamata spostata in ${queueTitle(target)}`);
    },
  }, "Sposta");
  return h("tr", { dataset: { call: call.call_id } },
    h("td", { class: "name" }), h("td", { class: "mono" }), h("td", { class: "num" }),
    h("td", { class: "num" }), h("td", { class: "buttons" }, select, button));
}

function updateWaiting(tr, call) {
  const [queue, caller, priority, waited, actions] = tr.cells;
  const select = actions.querySelector("select[data-move]");
  const button = actions.querySelector("[data-move-go]");
  if (tr.dataset.queue !== call.queue) {
    // the call changed queue (or is new): offer every other queue, keeping the choice if still valid
    const chosen = select.value;
    select.replaceChildren(...queues.filter((q) => q.name !== call.queue).map((q) =>
      h("option", { value: q.name }, `${q.title} (${q.name})`)));
    if (chosen && chosen !== call.queue) select.value = chosen;
  }
  tr.dataset.queue = call.queue;
  fill(queue, queueTitle(call.queue), h("small", {}, call.queue));
  fill(caller, call.caller, h("small", {}, call.call_id));
  priority.textContent = String(call.priority);
  setTick(waited, call.waited);
  select.setAttribute("aria-label", `Coda in cui spostare ${call.caller}`);
  button.setAttribute("aria-label", `Sposta ${call.caller} nella coda scelta`);
}

// --- the panel --------------------------------------------------------------------------------

export function renderFloor(floor) {
  $("floor").hidden = false;
  const phone = $("sup-phone");
  $("sup-phones").replaceChildren(...floor.supervisors.map((s) => h("option", { value: s.id }, s.name)));
  // one supervisor in the roster: their phone is the only sensible default
  if (!phoneTouched && !phone.value && floor.supervisors.length === 1) phone.value = floor.supervisors[0].id;
  sync($("floor-operators").tBodies[0], floor.operators, (op) => op.id, makeOperator, updateOperator);
  sync($("floor-talking").tBodies[0], floor.talking, (c) => c.call_id, makeTalking, updateTalking);
  sync($("floor-waiting").tBodies[0], floor.waiting, (c) => c.call_id, makeWaiting, updateWaiting);
  $("floor-talking-empty").hidden = floor.talking.length > 0;
  $("floor-waiting-empty").hidden = floor.waiting.length > 0;
}

/** Keep the times counting between two snapshots (`elapsed`: seconds since the last one). */
export function tickFloor(elapsed) {
  for (const td of document.querySelectorAll("#floor td[data-tick]")) {
    if (td.dataset.tick === "") continue;
    const now = Number(td.dataset.tick) + elapsed;
    td.dataset.value = now.toFixed(1);
    td.textContent = fmtDuration(now);
  }
}

$("sup-phone").addEventListener("change", (event) => {
  phoneTouched = true;
  const value = event.target.value.trim();
  if (value) sessionStorage.setItem(PHONE_KEY, value);
  else sessionStorage.removeItem(PHONE_KEY);
});
