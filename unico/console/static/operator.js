// The operator page: state and its buttons, the screen pop of the call offered or answered,
// transfer and escalation during the call, and the wrap-up form after it.
//
// The socket pushes the operator's state ("agent") and a "screenpop" notice when a call rings or
// is answered; the details come from GET /api/agents/{id}/screenpop (the API decides what an
// operator may see). Every action is a REST call with the session's token.

import {
  LiveSocket, REASON_LABELS, STATE_LABELS, STATE_TITLES, TIER_LABELS, api, fmtClock, fmtDuration, fmtWhen, h,
  setToken, showLoginError, toast, tokenLogin,
} from "./console.js";

const FOLLOW_KEY = "unico.console.follow";
const WRAPUP_KEY = "unico.console.wrapup";
const OUTCOMES = {
  answered: "risposta", abandoned_queue: "abbandonata in coda", abandoned_ivr: "chiusa nel risponditore",
  contained: "self-service", complaint: "reclamo", operators_unavailable: "operatori non disponibili",
  transferred: "trasferita", closed: "fuori orario",
};

const $ = (id) => document.getElementById(id);
const desk = $("desk");
const loginBox = $("login");
const loginForm = $("login-form");
let socket = null;
let operator = null;
let agent = null; // the last "agent" message
let answeredCall = null; // the call this page saw answered (on_call), for the wrap-up
let popCall = null;
let transferredCall = null; // handed on from this page: whoever takes it codes it

// --- state ------------------------------------------------------------------------------------

const ENABLED = {
  login: ["logged_out"],
  ready: ["not_ready", "wrap_up"],
  pause: ["ready", "ringing", "not_ready", "wrap_up"],
  logout: ["ready", "not_ready", "wrap_up"],
};

function renderAgent(message) {
  const previous = agent;
  agent = message;
  const state = $("state");
  state.dataset.state = message.state;
  state.textContent = STATE_LABELS[message.state] || message.state;
  state.title = STATE_TITLES[message.state] || message.state;
  $("reason").textContent = message.reason ? `(${REASON_LABELS[message.reason] || message.reason})` : "";
  $("reason").dataset.reason = message.reason || "";
  $("agent-name").textContent = message.name ? `${message.name} (${message.id})` : message.id;
  for (const button of document.querySelectorAll("[data-action]")) {
    button.disabled = !ENABLED[button.dataset.action].includes(message.state);
  }
  $("pause-reason").disabled = !ENABLED.pause.includes(message.state);
  $("call-actions").hidden = !(message.state === "on_call" && message.call_id);
  if (message.state === "on_call" && message.call_id) answeredCall = message.call_id;
  const holding = (message.state === "ringing" || message.state === "on_call") && message.call_id;
  if (!holding && popCall) {
    if (answeredCall === popCall && answeredCall !== transferredCall) {
      $("pop").dataset.callState = "ended"; // keep the caller in view for the wrap-up
    } else {
      $("pop").hidden = true; // offered, not answered
      popCall = null;
    }
  }
  if (!holding && answeredCall && previous && previous.call_id === answeredCall) {
    // the contact row follows the call: after a transfer it is the next operator's to code
    if (answeredCall !== transferredCall) openWrapup(answeredCall);
    answeredCall = null;
  }
  tick();
}

// --- screen pop -------------------------------------------------------------------------------

function text(selector, value) {
  const node = document.querySelector(`[data-pop="${selector}"]`);
  node.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
}

function renderPop(pop, state) {
  popCall = pop.call_id;
  const box = $("pop");
  box.hidden = false;
  box.dataset.callId = pop.call_id || "";
  box.dataset.callState = state;
  text("call_id", pop.call_id);
  text("queue", pop.queue);
  text("waited", pop.waited === null || pop.waited === undefined ? null : fmtDuration(pop.waited));
  text("caller", pop.caller);
  const c = pop.customer;
  $("customer").replaceChildren(c
    ? h("dl", { dataset: { customer: c.id } },
      h("dt", { title: "customer" }, "Cliente"), h("dd", { "data-pop": "customer-name" }, c.name),
      h("dt", { title: "segment" }, "Segmento"),
      h("dd", { "data-pop": "customer-segment" }, c.segment ? h("span", { class: "segment" }, c.segment) : "—"),
      h("dt", { title: "language" }, "Lingua"), h("dd", { "data-pop": "customer-language" }, c.language || "—"),
      h("dt", { title: "products" }, "Prodotti"),
      h("dd", { "data-pop": "customer-products" }, (c.products || []).join(", ") || "—"))
    : h("p", { class: "note", "data-pop": "customer-name", dataset: { guest: "1" } }, "Cliente non riconosciuto"));
  const contacts = pop.last_contacts || [];
  $("contacts").replaceChildren(contacts.length
    ? h("table", {}, h("tbody", {}, contacts.map((line) => h("tr", { dataset: { contact: line.id } },
      h("td", {}, fmtWhen(line.started_at)),
      h("td", {}, line.queue || "—"),
      h("td", {}, OUTCOMES[line.outcome] || line.outcome || "—"),
      h("td", {}, line.wrapup_code || ""),
    ))))
    : h("p", { class: "note" }, "Nessun contatto precedente"));
  const complaints = pop.open_complaints || [];
  $("complaints").replaceChildren(complaints.length
    ? h("table", {}, h("tbody", {}, complaints.map((item) => h("tr", { dataset: { complaint: item.number } },
      h("td", {}, item.number), h("td", {}, item.category), h("td", {}, item.status),
      h("td", { title: "due on" }, `entro ${item.due_on}`),
    ))))
    : h("p", { class: "note" }, "Nessun reclamo aperto"));
}

async function screenpop(message) {
  let pop = message.screenpop;
  if (!pop) {
    try {
      pop = await api("GET", `/api/agents/${encodeURIComponent(operator)}/screenpop`);
    } catch (error) {
      toast(`Scheda cliente non disponibile: ${error.message}`, "error");
      pop = { call_id: message.call_id };
    }
  }
  if (!pop.call_id) pop.call_id = message.call_id;
  if (agent && agent.call_id && agent.call_id !== pop.call_id) return; // a newer call already
  renderPop(pop, message.state);
}

// --- actions ----------------------------------------------------------------------------------

async function act(action) {
  const body = action === "pause" ? { reason: $("pause-reason").value } : undefined;
  try {
    const answer = await api("POST", `/api/agents/${encodeURIComponent(operator)}/${action}`, body);
    renderAgent({ ...(agent || {}), ...answer, type: "agent" });
  } catch (error) {
    toast(error.message, "error");
  }
}

async function transfer(target, what) {
  if (!agent || !agent.call_id) return;
  const callId = agent.call_id;
  // Marked before the request: the server hands the call on before it answers 202, so the socket
  // can push this operator's wrap-up state first, and that must not open the wrap-up form here.
  const before = transferredCall;
  transferredCall = callId;
  try {
    await api("POST", `/api/calls/${encodeURIComponent(callId)}/transfer`, target);
    toast(`Trasferimento a ${what} avviato: l'esito lo registra chi prende la chiamata`);
  } catch (error) {
    transferredCall = before;
    toast(error.message, "error");
  }
}

function fillQueues(queues) {
  const byTier = {};
  for (const queue of queues) (byTier[queue.tier] ||= []).push(queue);
  const option = (q) => h("option", { value: q.name }, `${q.title} (${q.name})`);
  $("transfer-queue").replaceChildren(...Object.entries(byTier).map(([tier, list]) =>
    h("optgroup", { label: TIER_LABELS[tier] || tier }, list.map(option))));
  const escalate = $("escalate");
  escalate.replaceChildren();
  for (const tier of ["specialist", "enterprise"]) {
    const list = byTier[tier];
    if (!list) continue;
    const select = h("select", { "aria-label": `Coda ${tier}`, dataset: { escalateTier: tier } }, list.map(option));
    const button = h("button", {
      type: "button", title: `escalate to the ${tier} tier`, dataset: { escalate: tier },
      onclick: () => transfer({ queue: select.value }, TIER_LABELS[tier]),
    }, `Escala a ${TIER_LABELS[tier]}`);
    escalate.append(select, button);
  }
}

// --- wrap-up ----------------------------------------------------------------------------------

function openWrapup(callId) {
  sessionStorage.setItem(WRAPUP_KEY, callId);
  $("wrapup").hidden = false;
  $("wrapup").dataset.callId = callId;
  $("wrapup-call").textContent = callId;
}

function closeWrapup() {
  sessionStorage.removeItem(WRAPUP_KEY);
  $("wrapup").hidden = true;
  $("wrapup-form").reset();
  if (!agent || !agent.call_id) {
    $("pop").hidden = true;
    popCall = null;
  }
}

$("wrapup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const callId = $("wrapup").dataset.callId;
  const body = { code: form.elements.code.value.trim(), resolved: form.elements.resolved.checked };
  if (form.elements.disposition.value) body.disposition = form.elements.disposition.value;
  try {
    await api("POST", `/api/calls/${encodeURIComponent(callId)}/wrapup`, body);
    toast("Esito salvato");
    closeWrapup();
  } catch (error) {
    toast(error.message, "error");
  }
});

// --- session ----------------------------------------------------------------------------------

function tick() {
  $("clock").textContent = fmtClock();
  if (agent && agent.since) $("since").textContent = fmtDuration(Date.now() / 1000 - agent.since);
}

function signOut(message = "") {
  if (socket) socket.stop();
  socket = null;
  setToken(null);
  sessionStorage.removeItem(FOLLOW_KEY);
  desk.hidden = true;
  loginBox.hidden = false;
  $("signout").hidden = true;
  $("who").textContent = "";
  showLoginError(loginForm, message);
}

function connect() {
  loginBox.hidden = true;
  showLoginError(loginForm, "");
  const follow = loginForm.elements.follow.value.trim() || sessionStorage.getItem(FOLLOW_KEY) || "";
  if (follow) sessionStorage.setItem(FOLLOW_KEY, follow);
  loginForm.elements.follow.value = "";
  const first = follow ? { view: "operator", operator: follow } : { view: "operator" };
  socket = new LiveSocket(first, {
    onMessage(message) {
      if (message.type === "hello") {
        operator = message.operator;
        $("who").textContent = message.role === "operator"
          ? `${message.user} · ${operator}`
          : `${message.user} (${message.role}) per ${operator}`;
        $("signout").hidden = false;
        $("pause-reason").replaceChildren(...message.pause_reasons.map((r) =>
          h("option", { value: r, title: r }, REASON_LABELS[r] || r)));
        fillQueues(message.queues);
        desk.hidden = false;
        const pending = sessionStorage.getItem(WRAPUP_KEY);
        if (pending) openWrapup(pending);
      } else if (message.type === "agent") {
        renderAgent(message);
      } else if (message.type === "screenpop") {
        screenpop(message);
      }
    },
    onState(state) {
      $("conn").dataset.conn = state;
      $("conn").textContent = { live: "in diretta", connecting: "connessione…", offline: "non connesso" }[state];
    },
    onRefused(code, reason) {
      signOut(reason);
    },
  });
  socket.start();
}

for (const button of document.querySelectorAll("[data-action]")) {
  button.addEventListener("click", () => act(button.dataset.action));
}
$("transfer-to-queue").addEventListener("click", () => {
  const queue = $("transfer-queue").value;
  transfer({ queue }, queue);
});
$("transfer-to-operator").addEventListener("click", () => {
  const target = $("transfer-operator").value.trim();
  if (target) transfer({ operator: target }, target);
});
$("signout").addEventListener("click", () => signOut());
setInterval(tick, 1000);
tokenLogin(loginForm, connect);
