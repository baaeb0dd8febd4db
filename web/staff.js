// The counsellor console: log in, set yourself available, chat in several conversations at
// once (one tab each), read the supervisor's whispers, ask for help, wrap up.
//
// After every (re)connect the server sends `welcome` and then `assigned` with the whole history
// for each conversation in progress: we rebuild from those (ChatLog skips seqs it has), then
// resend every unacknowledged message with its original ref (the server deduplicates).
//
// Frames beyond PROTOCOL.md this page uses if the server provides them:
//   server → client {type:"queue", waiting: n}        number of visitors waiting
//   client → server {type:"help", conversation_id}    raises a help_requested alert

import { getJSON } from "./common/api.js";
import { $, el } from "./common/dom.js";
import { ChatSocket } from "./common/socket.js";
import { setupStaffSession } from "./common/staffauth.js";
import { applyStrings, currentLang, setupLangSwitch, translator } from "./i18n.js";
import { ConversationPanel } from "./staff-panel.js";

const lang = currentLang();
const t = translator(lang);

const ui = {
  capacity: $("#capacity"),
  available: $("#available"),
  pause: $("#pause"),
  myState: $("#my-state"),
  queueCount: $("#queue-count"),
  globalError: $("#global-error"),
  tabs: $("#tabs"),
  panels: $("#panels"),
  empty: $("#no-conversations"),
};

const socket = new ChatSocket("/ws/staff");
/** conversation_id → ConversationPanel, in tab order */
const conversations = new Map();
let selected = null;
let config = { topics: [], text_max_chars: 2000 };
/** What the counsellor chose; sent again after every reconnect. null = not chosen yet. */
let wanted = null;
let me = "";

const ctx = {
  t,
  lang,
  send: (frame) => socket.send(frame),
  topics: () => config.topics || [],
  maxChars: () => config.text_max_chars || 2000,
  panels: ui.panels,
  me: () => me,
  onSelect: (panel) => select(panel),
  onClose: (panel) => closePanel(panel),
  onUnreadChange: () => updateTitle(),
};

// ---------------------------------------------------------------- availability

function sendStatus() {
  if (!wanted) return;
  const frame = { type: "status", state: wanted.state };
  if (wanted.state === "available") frame.capacity = wanted.capacity;
  socket.send(frame);
  renderStatus();
}

function renderStatus() {
  const state = wanted?.state || "offline";
  // pressed: a check mark besides the colour (hidden from the accessible name, which stays
  // "Beschikbaar"/"Available"; aria-pressed says it), and the state line says it in words
  for (const [button, key, on] of [
    [ui.available, "available", state === "available"],
    [ui.pause, "pause", state === "paused"],
  ]) {
    button.setAttribute("aria-pressed", String(on));
    button.replaceChildren(
      ...(on ? [el("span", { class: "btn__check", "aria-hidden": "true" }, "✓ ")] : []),
      t(key),
    );
  }
  ui.myState.textContent = t(`state_${state}`);
}

function readCapacity() {
  const n = Math.round(Number(ui.capacity.value));
  const capacity = Number.isFinite(n) ? Math.min(4, Math.max(1, n)) : 1;
  ui.capacity.value = String(capacity);
  return capacity;
}

ui.available.addEventListener("click", () => {
  wanted = { state: "available", capacity: readCapacity() };
  sendStatus();
});

ui.pause.addEventListener("click", () => {
  wanted = { state: "paused" };
  sendStatus();
});

ui.capacity.addEventListener("change", () => {
  const capacity = readCapacity();
  if (wanted?.state === "available") {
    wanted.capacity = capacity;
    sendStatus();
  }
});

// ---------------------------------------------------------------- tabs

function select(panel) {
  selected = panel;
  for (const p of conversations.values()) p.setSelected(p === panel);
  updateTitle();
}

function closePanel(panel) {
  const order = [...conversations.values()];
  const index = order.indexOf(panel);
  conversations.delete(panel.id);
  panel.tab.remove();
  panel.panel.remove();
  const next = order[index + 1] || order[index - 1] || null;
  if (selected === panel) select(next && next !== panel ? next : null);
  if (selected) selected.tab.focus();
  ui.empty.hidden = conversations.size > 0;
  updateTitle();
}

// Arrow keys move between tabs (WAI-ARIA tabs pattern, automatic activation).
ui.tabs.addEventListener("keydown", (event) => {
  const order = [...conversations.values()];
  const index = order.indexOf(selected);
  if (index < 0) return;
  const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: order.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = order[(moves[event.key] + order.length) % order.length];
  select(next);
  next.tab.focus();
});

function updateTitle() {
  const unread = [...conversations.values()].reduce((sum, p) => sum + (p.unread || (p.fresh ? 1 : 0)), 0);
  document.title = unread ? `(${unread}) ${t("staff_title")}` : t("staff_title");
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") selected?.markRead();
});

// ---------------------------------------------------------------- socket events

function panelFor(frame) {
  return conversations.get(frame.conversation_id) || null;
}

socket.on("welcome", (f) => {
  me = f.display_name || me;
  ui.globalError.textContent = "";
  sendStatus();
  for (const panel of conversations.values()) panel.resendAll();
});

socket.on("assigned", (f) => {
  const existing = conversations.get(f.conversation_id);
  if (existing) {
    existing.update(f);
    return;
  }
  const panel = new ConversationPanel(f, ctx);
  conversations.set(panel.id, panel);
  ui.tabs.append(panel.tab);
  ui.empty.hidden = true;
  if (!selected) select(panel);
  else panel.markFresh();
});

socket.on("message", (f) => panelFor(f)?.onMessage(f));
socket.on("typing", (f) => panelFor(f)?.onTyping(f));
socket.on("whisper", (f) => panelFor(f)?.onWhisper(f));
socket.on("ended", (f) => panelFor(f)?.onEnded(f));

socket.on("ack", (f) => {
  const panel = panelFor(f);
  if (panel?.onAck(f)) return;
  for (const p of conversations.values()) if (p.onAck(f)) return;
});

socket.on("notice", (f) => {
  const panel = panelFor(f);
  if (panel) panel.onNotice(f);
  else ui.globalError.textContent = f.message || "";
});

socket.on("queue", (f) => {
  if (typeof f.waiting !== "number") return;
  ui.queueCount.hidden = false;
  ui.queueCount.textContent = t("queue_waiting", { n: f.waiting });
});

socket.on("error", (f) => {
  if (f.ref) {
    const panel = panelFor(f);
    if (panel?.onError(f)) return;
    for (const p of conversations.values()) if (p.onError(f)) return;
  }
  ui.globalError.textContent = f.message || t("error_generic");
});

// ---------------------------------------------------------------- start up

function resetConversations() {
  for (const panel of conversations.values()) {
    panel.tab.remove();
    panel.panel.remove();
  }
  conversations.clear();
  selected = null;
  wanted = null;
  ui.empty.hidden = false;
  ui.queueCount.hidden = true;
  ui.globalError.textContent = "";
  renderStatus();
  updateTitle();
}

applyStrings(document, t, lang);
document.title = t("staff_title");
setupLangSwitch(document.querySelector("[data-lang-switch]"), t, lang);
renderStatus();

setupStaffSession({
  socket,
  t,
  onShowApp: (user) => {
    me = user.display_name || "";
  },
  onLogout: resetConversations,
  beforeLogout: () => socket.send({ type: "status", state: "offline" }),
});

getJSON(`/api/public-config?lang=${lang}`)
  .then((data) => {
    config = { ...config, ...data };
    for (const panel of conversations.values()) {
      panel.fillTopics();
      panel.renderFacts();
    }
  })
  .catch(() => {
    // without topics the wrap-up form only has the note
  });
