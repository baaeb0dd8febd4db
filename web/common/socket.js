// A WebSocket to the chat server that speaks the `chat.v1.json` subprotocol, dispatches
// incoming frames by their `type`, and reconnects by itself.
//
// Reconnect: after a close that was not asked for by stop(), wait 1 s, 2 s, 4 s, 8 s ... capped
// at 15 s (plus up to 20 % jitter, so that a whole train of phones does not come back at the same
// instant), and try at once when the browser says it is `online` again or the tab becomes
// visible. The page decides what to do on each (re)connect through the "open" event: it must
// send `hello` (visitor) or wait for `welcome` (staff), then resend what was not acknowledged.
//
// Events (socket.on(name, fn)):
//   "<frame type>"  a frame of that type, e.g. "message" → fn(frame)
//   "*"             every frame
//   "open"          connection established (also after each reconnect)
//   "close"         fn({code, reason, wasOpen}) on every close
//   "state"         fn(state) with state "connecting" | "open" | "waiting" (to reconnect) | "stopped"

const SUBPROTOCOL = "chat.v1.json";
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;

export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  return scheme + location.host + path;
}

export class ChatSocket {
  /** @param {string} path e.g. "/ws/visitor" */
  constructor(path) {
    this.path = path;
    this.ws = null;
    this.handlers = new Map();
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.state = "stopped";
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.dropConnection();
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    };
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, []);
    this.handlers.get(name).push(fn);
    return this;
  }

  emit(name, payload) {
    for (const fn of this.handlers.get(name) || []) {
      try {
        fn(payload);
      } catch (error) {
        console.error(`handler for ${name} failed`, error);
      }
    }
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit("state", state);
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Start (or restart after stop()) connecting. */
  connect() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.open();
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || this.ws) return;
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(socketUrl(this.path), SUBPROTOCOL);
    } catch (error) {
      console.error("cannot open socket", error);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let wasOpen = false;
    ws.addEventListener("open", () => {
      wasOpen = true;
      this.attempt = 0;
      this.setState("open");
      this.emit("open");
    });
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return; // an old socket we already gave up on
      this.ws = null;
      this.emit("close", { code: event.code, reason: event.reason, wasOpen });
      if (this.stopped) this.setState("stopped");
      else this.scheduleReconnect();
    });
  }

  receive(data) {
    if (typeof data !== "string") return; // we asked for JSON; ignore anything else
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      console.warn("ignoring a frame that is not JSON");
      return;
    }
    if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return;
    this.emit("*", frame);
    this.emit(frame.type, frame);
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const base = Math.min(FIRST_DELAY_MS * 2 ** this.attempt, MAX_DELAY_MS);
    const delay = base + Math.random() * base * 0.2;
    this.attempt += 1;
    this.setState("waiting");
    this.timer = setTimeout(() => this.open(), delay);
  }

  /** Try now instead of waiting for the backoff timer (browser back online, tab visible). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.open();
  }

  /** The network went away: close at once (a dead socket on a train may hang for minutes). */
  dropConnection() {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(4000, "offline");
      } catch {
        // already closing
      }
      this.emit("close", { code: 4000, reason: "offline", wasOpen: true });
      this.scheduleReconnect();
    }
  }

  /** Send one frame; returns false if the socket is not open (the caller keeps it to resend). */
  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Close and do not reconnect. */
  stop(code = 1000) {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(code);
      } catch {
        // already closed
      }
    }
    this.setState("stopped");
  }
}
