// Unico console: what the wallboard and the operator page share.
//
// - the bearer token lives in sessionStorage (gone with the tab), never in a URL;
// - `api()` calls the REST API with `Authorization: Bearer <token>`;
// - `LiveSocket` opens /ws/live, sends the token as the first message (browsers cannot set headers
//   on a websocket), and reconnects with a growing delay unless the server refused the token;
// - `h()` builds DOM nodes: data only ever goes in as text, never as HTML.

const TOKEN_KEY = "unico.console.token";

export const STATE_LABELS = {
  ready: "Pronto",
  ringing: "Squillo",
  on_call: "In chiamata",
  wrap_up: "Post-chiamata",
  not_ready: "In pausa",
  logged_out: "Disconnesso",
};

export const STATE_TITLES = {
  ready: "ready",
  ringing: "ringing",
  on_call: "on call",
  wrap_up: "wrap-up",
  not_ready: "not ready",
  logged_out: "logged out",
};

export const REASON_LABELS = {
  break: "Pausa",
  lunch: "Pranzo",
  training: "Formazione",
  meeting: "Riunione",
  backoffice: "Back office",
  ring_no_answer: "Chiamata non risposta",
  unregistered: "Telefono non registrato",
  supervisor: "Dal supervisore",
};

export const TIER_LABELS = { general: "Generale", specialist: "Specialisti", enterprise: "Enterprise" };

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** h("td", {dataset: {kpi: "waiting"}, class: "x", title: "..."}, "text", otherNode) */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function fmtPercent(share) {
  return share === null || share === undefined ? "—" : `${Math.round(share * 100)}%`;
}

const ROME_TIME = new Intl.DateTimeFormat("it-IT", { timeZone: "Europe/Rome", hour: "2-digit", minute: "2-digit" });
const ROME_DAY_TIME = new Intl.DateTimeFormat("it-IT", {
  timeZone: "Europe/Rome", weekday: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const ROME_DATE = new Intl.DateTimeFormat("it-IT", { timeZone: "Europe/Rome", dateStyle: "short" });

/** "20:00" today, "lun 2, 08:00" another day (Europe/Rome) */
export function fmtWhen(iso, now = new Date()) {
  if (!iso) return null;
  const when = new Date(iso);
  return ROME_DATE.format(when) === ROME_DATE.format(now) ? ROME_TIME.format(when) : ROME_DAY_TIME.format(when);
}

export function fmtClock(date = new Date()) {
  return ROME_TIME.format(date);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** fetch() the REST API with the session's token; resolves to the JSON body, throws ApiError. */
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${getToken() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || `HTTP ${response.status}`);
  return data;
}

export const CLOSE_MEANING = {
  4401: "Token non valido o scaduto",
  4403: "Questo utente non può aprire questa pagina",
  4404: "Operatore sconosciuto",
  4408: "Connessione troppo lenta",
  1011: "Il servizio ACD non è attivo",
};

/**
 * The live socket: `first` is the handshake body without the token ({view, operator}).
 * Callbacks: onMessage(msg), onState("connecting" | "live" | "offline"), onRefused(code, reason).
 * A refusal (4401, 4403, 4404) is final: no reconnect; anything else reconnects after a delay.
 */
export class LiveSocket {
  constructor(first, { onMessage, onState, onRefused }) {
    this.first = first;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onRefused = onRefused;
    this.delay = 500;
    this.stopped = false;
    this.ws = null;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/live`);
    this.ws = ws;
    this.onState("connecting");
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ ...this.first, token: getToken() }));
    });
    ws.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "hello") {
        this.delay = 500;
        this.onState("live");
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if ([4401, 4403, 4404].includes(event.code)) {
        this.stopped = true;
        this.onState("offline");
        this.onRefused(event.code, CLOSE_MEANING[event.code] || event.reason || "");
        return;
      }
      this.onState("offline");
      if (this.stopped) return;
      this.timer = setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    });
  }
}

let toastTimer = null;

/** A short message in the corner; errors stay longer. */
export function toast(text, kind = "info") {
  let node = document.getElementById("toast");
  if (!node) {
    node = h("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite" });
    document.body.append(node);
  }
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, kind === "error" ? 8000 : 3000);
}

/**
 * The token form: calls `onToken()` once a token is stored (at once if the tab has one).
 * `form` holds an <input name="token"> and an element [data-role="error"].
 */
export function tokenLogin(form, onToken) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = form.elements.token.value.trim();
    if (!token) return;
    setToken(token);
    form.elements.token.value = "";
    onToken();
  });
  if (getToken()) onToken();
}

export function showLoginError(form, text) {
  form.querySelector('[data-role="error"]').textContent = text;
}
