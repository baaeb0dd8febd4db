// The supervisor dashboard: live overview (queue, conversations, staff), alerts, and silent
// watching of one conversation at a time with a whisper box.
//
// After every (re)connect (`welcome`) we subscribe with `overview` and watch the open
// conversation again (`watching.history` refills the log; ChatLog skips seqs it already has).
// Waiting times and durations count up locally every second between overview frames.
//
// Frames beyond PROTOCOL.md this page uses if the server provides them:
//   client → server {type:"prioritise", conversation_id, visitor_id, priority}
//   (queue rows need a `conversation_id`; we also send `visitor_id`, which the overview has)

import { getJSON } from "./common/api.js";
import { $, el } from "./common/dom.js";
import { formatClock, formatDuration, nowSeconds } from "./common/format.js";
import { ChatSocket } from "./common/socket.js";
import { setupStaffSession } from "./common/staffauth.js";
import { applyStrings, currentLang, setupLangSwitch, translator } from "./i18n.js";
import { WatchPanel } from "./supervisor-watch.js";

const lang = currentLang();
const t = translator(lang);
const MAX_ALERTS = 20;

const ui = {
  globalError: $("#global-error"),
  alerts: $("#alerts"),
  alertsList: $("#alerts-list"),
  queueBody: $("#queue-body"),
  queueEmpty: $("#queue-empty"),
  queueTotal: $("#queue-total"),
  convBody: $("#conversations-body"),
  convEmpty: $("#conversations-empty"),
  convTotal: $("#conversations-total"),
  staffBody: $("#staff-body"),
  staffEmpty: $("#staff-empty"),
  watchArea: $("#watch-area"),
  watchHint: $("#watch-hint"),
  statsLink: $("#stats-link"),
  app: $("#app-view"),
};

const socket = new ChatSocket("/ws/staff");
let topics = [];
let overview = { queue: [], conversations: [], staff: [] };
let overviewAt = nowSeconds();
/** The conversation being watched (one at a time), or null. */
let watch = null;
let me = "";
let myId = "";
/** ref → conversation_id of a `prioritise` without an answer. */
const priorityRefs = new Map();

const watchCtx = {
  t,
  lang,
  send: (frame) => socket.send(frame),
  me: () => me,
  onClose: () => closeWatch(),
};

// ---------------------------------------------------------------- overview tables

function topicLabel(id) {
  return topics.find((x) => x.id === id)?.label || id || "–";
}

function translated(prefix, value) {
  const key = `${prefix}_${value}`;
  const text = t(key);
  return text === key ? String(value ?? "") : text;
}

/** A button whose name is its visible text plus a hidden "(nickname)", unique per row. */
function rowButton(text, who, focusKey, onClick, extra = {}) {
  return el(
    "button",
    { type: "button", class: "btn", dataset: { focusKey }, onclick: onClick, ...extra },
    text,
    el("span", { class: "visually-hidden" }, ` (${who})`),
  );
}

/** A table cell that carries its column's name, shown as a label when rows become cards
 * on a narrow screen (supervisor.css). */
function cell(labelKey, attrs, ...children) {
  return el("td", { ...attrs, dataset: { ...(attrs.dataset || {}), label: t(labelKey) } }, ...children);
}

/** Re-render a table body, keeping keyboard focus on the same button if it still exists. */
function renderRows(body, rows) {
  const focused = document.activeElement?.dataset?.focusKey;
  body.replaceChildren(...rows);
  if (focused) body.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  updateScrollBoxes();
}

/** A table box that has to scroll sideways gets keyboard focus and a name (WCAG 2.1.1);
 * one that fits stays out of the tab order. */
function updateScrollBoxes() {
  for (const box of document.querySelectorAll(".table-wrap")) {
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    if (scrolls) {
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      box.setAttribute("aria-labelledby", box.dataset.scrollLabel);
    } else {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-labelledby");
    }
  }
}
window.addEventListener("resize", updateScrollBoxes);

function renderQueue() {
  const rows = overview.queue.map((item) => {
    const key = item.conversation_id || item.visitor_id;
    const priority = Number(item.priority) || 0;
    const waited = cell("col_waited", { class: "num", dataset: { since: String(overviewAt - (item.waited_seconds || 0)) } });
    return el(
      "tr",
      { dataset: { testid: "queue-row", visitorId: item.visitor_id || "" } },
      cell("col_nickname", { class: "cell--name" }, item.nickname || "?"),
      cell("col_topic", {}, topicLabel(item.topic)),
      cell("col_priority", { class: "num" }, String(item.priority ?? 0)),
      waited,
      cell(
        "col_actions",
        {},
        el(
          "div",
          { class: "actions" },
          rowButton(t("raise"), item.nickname, `raise-${key}`, () => prioritise(item, priority + 1)),
          rowButton(t("lower"), item.nickname, `lower-${key}`, () => prioritise(item, priority - 1)),
        ),
      ),
    );
  });
  renderRows(ui.queueBody, rows);
  ui.queueEmpty.hidden = rows.length > 0;
  ui.queueTotal.textContent = `(${rows.length})`;
}

function renderConversations() {
  const rows = overview.conversations.map((c) => {
    const flags = Array.isArray(c.flags) ? c.flags : [];
    const watching = watch?.id === c.conversation_id;
    const classes = [flags.some((f) => f === "crisis" || f === "help_requested") ? "is-flagged" : "", watching ? "is-watched" : ""];
    return el(
      "tr",
      { class: classes.join(" ").trim(), dataset: { testid: "conversation-row", conversationId: c.conversation_id } },
      cell("col_visitor", { class: "cell--name" }, c.visitor || "?"),
      cell("col_counsellor", {}, c.counsellor || "–"),
      cell("col_duration", { class: "num", dataset: { since: String(c.started_ts || overviewAt) } }),
      cell(
        "col_flags",
        { class: flags.length ? "" : "cell--empty" },
        el("span", {}, flags.length ? flags.map((f) => el("span", { class: `flag flag--${f}` }, translated("flag", f))) : "–"),
      ),
      cell("col_watchers", { class: "num" }, String(c.watchers ?? 0)),
      cell(
        "col_actions",
        {},
        rowButton(t("watch"), c.visitor || "?", `watch-${c.conversation_id}`, () => openWatch(c.conversation_id), {
          "aria-pressed": String(watching),
        }),
      ),
    );
  });
  renderRows(ui.convBody, rows);
  ui.convEmpty.hidden = rows.length > 0;
  ui.convTotal.textContent = `(${rows.length})`;
}

function renderStaff() {
  const rows = overview.staff.map((s) => {
    const count = Array.isArray(s.conversations) ? s.conversations.length : (s.conversations ?? 0);
    const isMe = Boolean(myId) && s.staff_id === myId;
    // The server only knows a chosen state: "offline" means "not taking chats", which for
    // anyone but us may or may not be logged in. We know that we are.
    const state = isMe && (!s.state || s.state === "offline") ? t("staffstate_me") : translated("staffstate", s.state || "offline");
    return el(
      "tr",
      { class: isMe ? "is-me" : "", dataset: { testid: "staff-row", staffId: s.staff_id || "" } },
      cell("col_name", { class: "cell--name" }, isMe ? `${s.display_name || "?"} (${t("you_staff")})` : s.display_name || "?"),
      cell("col_role", {}, translated("role", s.role)),
      cell("col_state", { dataset: { state: s.state || "offline" } }, state),
      cell("col_conversations", { class: "num" }, String(count)),
    );
  });
  renderRows(ui.staffBody, rows);
  ui.staffEmpty.hidden = rows.length > 0;
}

function renderOverview() {
  renderQueue();
  renderConversations();
  renderStaff();
  tick();
}

/** Count waiting times and durations up, locally, every second. */
function tick() {
  const now = nowSeconds();
  for (const cell of ui.app.querySelectorAll("[data-since]")) {
    cell.textContent = formatDuration(now - Number(cell.dataset.since));
  }
}
setInterval(tick, 1000);

// ---------------------------------------------------------------- actions

function prioritise(item, priority) {
  const ref = `prio-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const frame = { type: "prioritise", priority, ref };
  if (item.conversation_id) frame.conversation_id = item.conversation_id;
  if (item.visitor_id) frame.visitor_id = item.visitor_id;
  priorityRefs.set(ref, item.conversation_id || item.visitor_id);
  if (!socket.send(frame)) ui.globalError.textContent = t("conn_down");
}

function openWatch(conversationId) {
  if (watch?.id === conversationId) {
    watch.textarea.focus();
    return;
  }
  closeWatch();
  const info = overview.conversations.find((c) => c.conversation_id === conversationId) || {
    conversation_id: conversationId,
  };
  watch = new WatchPanel(info, watchCtx);
  ui.watchArea.replaceChildren(watch.section);
  ui.watchArea.classList.add("is-watching");
  socket.send({ type: "watch", conversation_id: conversationId });
  renderConversations();
  watch.title.setAttribute("tabindex", "-1");
  watch.title.focus();
}

function closeWatch() {
  if (!watch) return;
  const id = watch.id;
  socket.send({ type: "unwatch", conversation_id: id });
  watch = null;
  ui.watchArea.replaceChildren(ui.watchHint);
  ui.watchArea.classList.remove("is-watching");
  renderConversations();
  document.querySelector(`[data-focus-key="${CSS.escape(`watch-${id}`)}"]`)?.focus();
}

// ---------------------------------------------------------------- alerts

/** A live alert, or one the server replays after (re)connecting (`replayed: true`, raised
 * before this socket was there): shown alike, with "eerder" / "earlier" instead of a time, and
 * only once — an alert already on the list for that conversation and kind is not doubled. */
function addAlert(frame) {
  const kind = String(frame.kind || "");
  const replayed = frame.replayed === true;
  if (replayed && frame.conversation_id && shownAlert(kind, frame.conversation_id)) return;
  const label = ["crisis", "help_requested"].includes(kind) ? t(`alert_${kind}`) : t("alert_other");
  const conversation =
    overview.conversations.find((c) => c.conversation_id === frame.conversation_id) ||
    overview.queue.find((c) => c.conversation_id === frame.conversation_id);
  const when = replayed
    ? el("span", { class: "alert__time alert__time--earlier", title: t("alert_earlier_long") }, t("alert_earlier"))
    : el("span", { class: "alert__time" }, formatClock(nowSeconds(), lang));
  const item = el(
    "div",
    {
      class: replayed ? "alert alert--replayed" : "alert",
      dataset: { testid: "alert", kind, conversationId: frame.conversation_id || "", ...(replayed && { replayed: "1" }) },
    },
    el("span", { class: "alert__kind" }, label),
    when,
    el(
      "span",
      { class: "alert__text" },
      alertText(kind, frame.message, conversation),
    ),
  );
  if (frame.conversation_id) {
    item.append(
      el(
        "button",
        { type: "button", class: "btn btn--primary", onclick: () => openWatch(frame.conversation_id) },
        t("open_conversation"),
      ),
    );
  }
  item.append(
    el(
      "button",
      {
        type: "button",
        class: "btn",
        onclick: () => {
          item.remove();
          updateAlerts();
        },
      },
      t("dismiss"),
    ),
  );
  ui.alertsList.prepend(item);
  while (ui.alertsList.children.length > MAX_ALERTS) ui.alertsList.lastElementChild.remove();
  updateAlerts();
}

function shownAlert(kind, conversationId) {
  return [...ui.alertsList.children].some(
    (item) => item.dataset.kind === kind && item.dataset.conversationId === conversationId,
  );
}

/** The alert in the page's language. The server's text is written in both languages at once
 * ("Anna vraagt hulp / asks for help"): we say it ourselves where we can, else keep one half. */
function alertText(kind, message, conversation) {
  const visitor = conversation?.visitor || conversation?.nickname || "";
  const counsellor = conversation?.counsellor || "";
  const who = visitor && counsellor ? ` (${visitor} – ${counsellor})` : visitor ? ` (${visitor})` : "";
  if (kind === "help_requested" && counsellor) return t("alert_help_text", { name: counsellor }) + who;
  if (kind === "crisis" && visitor) return t("alert_crisis_text", { name: visitor }) + (counsellor ? ` (${counsellor})` : "");
  const halves = String(message || "").split(" / ");
  const text = halves.length === 2 ? halves[lang === "en" ? 1 : 0] : String(message || "");
  return text + who;
}

function updateAlerts() {
  const n = ui.alertsList.children.length;
  ui.alerts.hidden = n === 0;
  document.title = n ? `(${n}!) ${t("supervisor_title")}` : t("supervisor_title");
}

// ---------------------------------------------------------------- socket events

function isWatched(frame) {
  return watch && frame.conversation_id === watch.id;
}

socket.on("welcome", (f) => {
  me = f.display_name || me;
  myId = f.staff_id || myId;
  if (!["supervisor", "admin"].includes(f.role)) {
    ui.globalError.textContent = t("not_supervisor");
    return;
  }
  ui.globalError.textContent = "";
  socket.send({ type: "overview" });
  if (watch) socket.send({ type: "watch", conversation_id: watch.id });
});

socket.on("overview", (f) => {
  overview = {
    queue: Array.isArray(f.queue) ? f.queue : [],
    conversations: Array.isArray(f.conversations) ? f.conversations : [],
    staff: Array.isArray(f.staff) ? f.staff : [],
  };
  overviewAt = nowSeconds();
  renderOverview();
  const info = watch && overview.conversations.find((c) => c.conversation_id === watch.id);
  if (info) watch.update(info);
});

socket.on("watching", (f) => {
  if (isWatched(f)) watch.onWatching(f);
});
socket.on("message", (f) => {
  if (isWatched(f)) watch.onMessage(f);
});
socket.on("typing", (f) => {
  if (isWatched(f)) watch.onTyping(f);
});
socket.on("whisper", (f) => {
  if (isWatched(f)) watch.onWhisper(f);
});
socket.on("ended", (f) => {
  if (isWatched(f)) watch.onEnded(f);
});
socket.on("alert", addAlert);

socket.on("ack", (f) => {
  if (watch?.onAck(f)) return;
  priorityRefs.delete(f.ref);
});

socket.on("error", (f) => {
  if (f.ref && priorityRefs.has(f.ref)) {
    priorityRefs.delete(f.ref);
    ui.globalError.textContent = f.message || t("error_generic");
    return;
  }
  if (f.ref && watch?.pendingWhispers.has(f.ref)) {
    watch.onError(f);
    return;
  }
  if (f.code === "forbidden") ui.globalError.textContent = t("not_supervisor");
  else if (watch && f.code === "not_found") watch.onError(f);
  else ui.globalError.textContent = f.message || t("error_generic");
});

// ---------------------------------------------------------------- start up

function reset() {
  if (watch) ui.watchArea.replaceChildren(ui.watchHint);
  ui.watchArea.classList.remove("is-watching");
  watch = null;
  overview = { queue: [], conversations: [], staff: [] };
  ui.alertsList.replaceChildren();
  updateAlerts();
  renderOverview();
  ui.globalError.textContent = "";
}

applyStrings(document, t, lang);
document.title = t("supervisor_title");
setupLangSwitch(document.querySelector("[data-lang-switch]"), t, lang);
ui.statsLink.href = `/stats?lang=${lang}`;
renderOverview();

setupStaffSession({
  socket,
  t,
  onShowApp: (user) => {
    me = user.display_name || "";
  },
  onLogout: reset,
});

getJSON(`/api/public-config?lang=${lang}`)
  .then((data) => {
    topics = Array.isArray(data.topics) ? data.topics : [];
    renderQueue();
    tick();
  })
  .catch(() => {
    // topic ids are shown as they are
  });
