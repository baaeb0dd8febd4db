// The visitor's chat page: start → (closed | waiting → chatting) → ended.
//
// Reliability on bad networks is the point of most of this file:
//   * every `say` gets a `ref` and stays in `outbox` (shown as "sending…") until its `ack`;
//   * the socket reconnects by itself (common/socket.js); on each new connection we send
//     `hello` with `resume` (the token from `welcome`, kept in sessionStorage only) and
//     `last_seq` (the highest seq up to which we have everything), then resend the outbox with
//     the original refs: the server stores a ref only once and answers with the original ack;
//   * messages are kept by seq (common/chatlog.js), so nothing is lost or shown twice.
// Leaving (quick exit, "New chat", an invalid token) clears sessionStorage.

import { onQuickExit, setQuickExitUrl } from "./common/quickexit.js";
import { getJSON } from "./common/api.js";
import { ChatLog } from "./common/chatlog.js";
import { $, el, newRef } from "./common/dom.js";
import { etaMinutes, formatDateTime, nowSeconds } from "./common/format.js";
import { ChatSocket } from "./common/socket.js";
import { applyStrings, currentLang, setupLangSwitch, translator } from "./i18n.js";
import { setupEndedView } from "./visitor-ended.js";

const lang = currentLang();
const t = translator(lang);
const SESSION_KEY = "chat.visitor";
/** The resume token of a conversation that was blocked: sent as `previous_token` in every
 * later hello of this tab, so that "New chat" does not get round the block. sessionStorage
 * only (quick exit clears it with everything else). */
const BLOCKED_KEY = "chat.blocked";
const TYPING_IDLE_MS = 4000;
const TYPING_SHOW_MS = 10000;
const LEAVE_FALLBACK_MS = 4000;

// ---------------------------------------------------------------- elements

const ui = {
  startScreen: $("#start-screen"),
  startNotice: $("#start-notice"),
  startForm: $("#start-form"),
  nickname: $("#nickname"),
  nicknameError: $("#nickname-error"),
  suggest: $("#suggest"),
  topic: $("#topic"),
  start: $("#start"),
  closedScreen: $("#closed-screen"),
  closedMessage: $("#closed-message"),
  closedOpens: $("#closed-opens"),
  chatScreen: $("#chat-screen"),
  waiting: $("#waiting"),
  queueStatus: $("#queue-status"),
  log: $("#log"),
  typing: $("#typing"),
  composer: $("#composer"),
  message: $("#message"),
  charsLeft: $("#chars-left"),
  composerError: $("#composer-error"),
  endChat: $("#end-chat"),
  endButton: $("#end-button"),
  endConfirm: $("#end-confirm"),
  endYes: $("#end-yes"),
  endNo: $("#end-no"),
  ended: $("#ended"),
  endedReason: $("#ended-reason"),
  survey: $("#survey"),
  surveyError: $("#survey-error"),
  surveyThanks: $("#survey-thanks"),
  save: $("#save"),
  forgetArea: $("#forget-area"),
  forget: $("#forget"),
  forgetConfirm: $("#forget-confirm"),
  forgetYes: $("#forget-yes"),
  forgetNo: $("#forget-no"),
  forgetStatus: $("#forget-status"),
  newChat: $("#new-chat"),
  emergency: $(".emergency"),
  emergencyDetails: $("#emergency-details"),
  emergencyText: $("#emergency-text"),
  banner: $("#reconnect-banner"),
  privacy: $("#privacy-link"),
};

// ---------------------------------------------------------------- state

/** What survives a reload of the tab (sessionStorage only; cleared on exit). No message text. */
let session = loadSession();
/** "start" | "joining" | "waiting" | "chatting" | "ended" | "closed" */
let phase = "start";
let config = { text_max_chars: 2000, topics: [] };
/** ref → {text, ts}: our messages without an ack yet, resent after every reconnect. */
const outbox = new Map();
/** Frames (leave, survey) to send once the current connection is welcomed. */
const afterWelcome = [];
/** ref → {frame, onRefused, onDone} for control frames without an answer yet. */
const controlRefs = new Map();
let welcomed = false;
let pendingHello = null;
let typingSent = false;
let typingTimer = null;
let typingShowTimer = null;
let leaveTimer = null;

const socket = new ChatSocket("/ws/visitor");
const log = new ChatLog(ui.log, {
  lang,
  t,
  mine: (msg) => msg.from === "visitor",
  authorOf: (msg) => {
    if (msg.from === "visitor") return t("you");
    if (msg.from === "counsellor") return msg.author || session.counsellor || t("counsellor_generic");
    return msg.author || "";
  },
});

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || {};
  } catch {
    return {};
  }
}

function saveSession() {
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // private mode without storage: resume only works while the page stays open
  }
}

function blockedToken() {
  try {
    return sessionStorage.getItem(BLOCKED_KEY) || "";
  } catch {
    return "";
  }
}

function rememberBlocked(token) {
  if (!token) return;
  try {
    sessionStorage.setItem(BLOCKED_KEY, token);
  } catch {
    // without storage the block still holds for the network address
  }
}

function clearSession() {
  session = {};
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing stored
  }
}

// ---------------------------------------------------------------- phases

function setPhase(next) {
  phase = next;
  if (["waiting", "chatting", "ended"].includes(next)) {
    session.phase = next;
    saveSession();
  }
  const starting = next === "start" || next === "joining";
  ui.startScreen.hidden = !starting;
  ui.closedScreen.hidden = next !== "closed";
  ui.chatScreen.hidden = !["waiting", "chatting", "ended"].includes(next);
  ui.waiting.hidden = next !== "waiting";
  ui.composer.hidden = !(next === "waiting" || next === "chatting");
  ui.endChat.hidden = ui.composer.hidden;
  ui.ended.hidden = next !== "ended";
  // While chatting the emergency help folds to its title ("In nood?"), one click away.
  const folded = next === "chatting";
  if (folded !== ui.emergency.classList.contains("emergency--folded")) {
    ui.emergency.classList.toggle("emergency--folded", folded);
    ui.emergencyDetails.open = !folded;
  }
  ui.start.disabled = next === "joining";
  ui.start.textContent = next === "joining" ? t("connecting") : t("start");
  document.body.dataset.phase = next;
  if (next !== "chatting") showTyping(false);
  updateBanner();
}

function updateBanner() {
  const inConversation = phase === "waiting" || phase === "chatting";
  ui.banner.hidden = !(inConversation && !welcomed);
}

// ---------------------------------------------------------------- sending

function send(frame) {
  return socket.send(frame);
}

function sendHello() {
  const previous = blockedToken();
  if (session.token) {
    const frame = { type: "hello", resume: session.token, last_seq: log.contiguousSeq(), lang };
    if (previous) frame.previous_token = previous;
    send(frame);
  } else if (pendingHello) {
    const frame = { type: "hello", nickname: pendingHello.nickname, lang };
    if (previous) frame.previous_token = previous;
    if (pendingHello.topic) frame.topic = pendingHello.topic;
    const entry = new URLSearchParams(location.search).get("entry");
    if (entry && /^[\w.-]{1,64}$/.test(entry)) frame.entry = entry;
    send(frame);
  }
}

/** A frame that needs a welcomed connection (leave, survey); kept until then. */
function sendControl(frame, onRefused, onDone) {
  const ref = newRef();
  const withRef = { ...frame, ref };
  controlRefs.set(ref, { frame: withRef, onRefused: onRefused || (() => {}), onDone: onDone || (() => {}) });
  if (welcomed && send(withRef)) return;
  afterWelcome.push(withRef);
  if (socket.state === "stopped" && session.token) socket.connect();
}

function say(text) {
  const ref = newRef();
  const ts = nowSeconds();
  outbox.set(ref, { text, ts });
  log.addPending(ref, { from: "visitor", text, ts });
  if (welcomed) send({ type: "say", text, ref });
  setTyping(false);
}

function resend(ref) {
  const item = outbox.get(ref);
  if (item && welcomed) send({ type: "say", text: item.text, ref });
}

function setTyping(active) {
  clearTimeout(typingTimer);
  if (active) typingTimer = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
  if (active === typingSent) return;
  typingSent = active;
  if (welcomed && phase === "chatting") send({ type: "typing", active });
}

// ---------------------------------------------------------------- socket events

socket.on("open", () => {
  welcomed = false;
  if (!session.token && !pendingHello) {
    socket.stop(); // nothing to say on this connection
    return;
  }
  sendHello();
});

socket.on("state", updateBanner);

socket.on("close", ({ code, wasOpen }) => {
  welcomed = false;
  typingSent = false;
  updateBanner();
  if (code === 1008) {
    // Blocked. Keep the token, so that a new hello from this tab says who it was.
    socket.stop();
    rememberBlocked(session.token);
    clearSession();
    pendingHello = null;
    if (phase === "start" || phase === "joining") {
      setPhase("start");
      showStartNotice(t("blocked_start"));
    } else if (phase !== "ended") showEnded("blocked");
    return;
  }
  if (code === 1013) {
    // "Try again later" (e.g. we read too slowly): the socket reconnects by itself and the
    // hello resumes with last_seq; nothing is lost and nothing is shown twice.
    return;
  }
  if (phase === "joining" && !wasOpen) {
    socket.stop();
    pendingHello = null;
    setPhase("start");
    showStartNotice(t("error_unavailable"));
    return;
  }
  const busy = phase === "waiting" || phase === "chatting" || afterWelcome.length > 0;
  if (!busy && phase !== "joining") socket.stop();
});

socket.on("welcome", (f) => {
  welcomed = true;
  pendingHello = null;
  session.token = f.resume_token || session.token;
  session.conversationId = f.conversation_id || session.conversationId;
  session.nickname = f.nickname || session.nickname;
  saveSession();
  if (phase === "start" || phase === "joining") setPhase("waiting");
  updateBanner();
  for (const ref of outbox.keys()) resend(ref);
  for (const frame of afterWelcome.splice(0)) send(frame);
});

socket.on("queued", (f) => {
  if (phase === "start" || phase === "joining" || phase === "chatting") setPhase("waiting");
  let text = t("queue_position", { position: f.position });
  if (typeof f.eta_seconds === "number") {
    const minutes = etaMinutes(f.eta_seconds);
    text += ` ${minutes === 1 ? t("eta_one") : t("eta_many", { minutes })}`;
  } else {
    text += ` ${t("eta_unknown")}`;
  }
  if (ui.queueStatus.textContent !== text) ui.queueStatus.textContent = text;
});

socket.on("assigned", (f) => {
  const name = f.counsellor || t("counsellor_generic");
  const isNew = phase !== "chatting" || session.counsellor !== f.counsellor;
  session.counsellor = f.counsellor || "";
  session.hadCounsellor = true;
  if (f.conversation_id) session.conversationId = f.conversation_id;
  saveSession();
  setPhase("chatting");
  if (isNew) log.addNotice(t("assigned", { name }), "assigned");
});

socket.on("message", (f) => {
  if (f.conversation_id && session.conversationId && f.conversation_id !== session.conversationId) {
    return;
  }
  log.addMessage(f);
  if (f.from === "counsellor") {
    showTyping(false);
    if (phase === "waiting") {
      session.hadCounsellor = true;
      setPhase("chatting");
    }
  }
});

socket.on("ack", (f) => {
  if (outbox.has(f.ref)) {
    outbox.delete(f.ref);
    log.confirm(f.ref, f.seq, f.ts);
  }
  const control = controlRefs.get(f.ref);
  controlRefs.delete(f.ref);
  control?.onDone();
});

socket.on("typing", (f) => {
  if (f.from && f.from !== "counsellor") return;
  showTyping(Boolean(f.active));
});

socket.on("notice", (f) => {
  const code = String(f.code || "");
  const text = f.message || t(`notice_${code}`);
  const kind = code === "pii_warning" ? "warning" : "info";
  log.addNotice(text, kind).dataset.code = code;
});

socket.on("ended", (f) => {
  if (f.reason === "blocked") rememberBlocked(session.token);
  showEnded(f.reason);
});

socket.on("closed", (f) => {
  socket.stop();
  clearSession();
  pendingHello = null;
  ui.closedMessage.textContent = f.message || "";
  ui.closedOpens.hidden = !f.opens_at;
  if (f.opens_at) ui.closedOpens.textContent = t("closed_opens", { when: formatDateTime(f.opens_at, lang) });
  setPhase("closed");
});

socket.on("error", handleError);

function handleError(f) {
  const ref = f.ref;
  const ours = ref && outbox.has(ref);
  const control = ref && controlRefs.get(ref);
  if (control) controlRefs.delete(ref);
  switch (f.code) {
    case "nickname_invalid":
    case "nickname_taken":
      pendingHello = null;
      setPhase("start");
      showNicknameError(f.message || t("error_generic"));
      return;
    case "resume_invalid":
      clearSession();
      socket.stop();
      if (phase === "ended") return; // the survey cannot be sent any more; nothing to show
      resetConversation();
      setPhase("start");
      showStartNotice(t("resume_invalid"));
      return;
    case "rate_limited":
      if (ours) setTimeout(() => resend(ref), 1500);
      else if (control) {
        controlRefs.set(ref, control);
        setTimeout(() => (welcomed ? send(control.frame) : afterWelcome.push(control.frame)), 1500);
      }
      return;
    case "unavailable":
      if (!welcomed) {
        if (session.token) setTimeout(sendHello, 3000);
        else {
          pendingHello = null;
          setPhase("start");
          showStartNotice(f.message || t("error_unavailable"));
        }
      } else if (ours) setTimeout(() => resend(ref), 3000);
      else if (control) control.onRefused(f.message || t("error_unavailable"));
      return;
    case "too_long": {
      const text = ours ? log.drop(ref) : null;
      outbox.delete(ref);
      if (text && !ui.message.value) ui.message.value = text;
      showComposerError(t("too_long", { max: config.text_max_chars }));
      return;
    }
    default:
      if (ours) {
        log.drop(ref);
        outbox.delete(ref);
        showComposerError(f.message || t("error_generic"));
      } else if (control) control.onRefused(f.message || t("error_generic"));
      else console.warn("server error", f.code, f.message);
  }
}

// ---------------------------------------------------------------- rendering helpers

function showTyping(active) {
  clearTimeout(typingShowTimer);
  ui.typing.hidden = !active;
  if (active) {
    ui.typing.textContent = t("typing", { name: session.counsellor || t("counsellor_generic") });
    typingShowTimer = setTimeout(() => showTyping(false), TYPING_SHOW_MS);
  }
}

function showNicknameError(text) {
  ui.nicknameError.textContent = text;
  ui.nickname.setAttribute("aria-invalid", "true");
  ui.nickname.focus();
}

function clearNicknameError() {
  ui.nicknameError.textContent = "";
  ui.nickname.removeAttribute("aria-invalid");
}

function showStartNotice(text) {
  ui.startNotice.textContent = text;
  ui.startNotice.hidden = !text;
}

function showComposerError(text) {
  ui.composerError.textContent = text;
}

function showEnded(reason) {
  clearTimeout(leaveTimer);
  // Already showing the end (a reconnect to send the survey or `forget` is told `ended` again):
  // keep what the visitor did on this screen.
  if (phase === "ended") return;
  const hadCounsellor = Boolean(session.hadCounsellor);
  let key = `ended_${reason}`;
  if (reason === "visitor_left" && !hadCounsellor) key = "ended_left_queue";
  if (!["visitor_left", "counsellor_ended", "timeout", "blocked"].includes(reason)) {
    key = hadCounsellor ? "ended_counsellor_ended" : "ended_left_queue";
  }
  ui.endedReason.textContent = t(key);
  // messages that never got an ack will not be delivered any more
  for (const ref of outbox.keys()) log.drop(ref);
  outbox.clear();
  ui.survey.hidden = !hadCounsellor || reason === "blocked";
  ui.surveyThanks.textContent = "";
  ui.save.hidden = log.messages().length === 0;
  // a blocked visitor has no conversation to delete (and no connection to ask with)
  ui.forgetArea.hidden = reason === "blocked";
  ui.forget.hidden = false;
  ui.forget.disabled = false;
  ui.forgetConfirm.hidden = true;
  ui.forget.setAttribute("aria-expanded", "false");
  ui.forgetStatus.textContent = "";
  setPhase("ended");
  ui.ended.querySelector("h2").setAttribute("tabindex", "-1");
  ui.ended.querySelector("h2").focus();
}

function resetConversation() {
  log.clear();
  outbox.clear();
  afterWelcome.length = 0;
  controlRefs.clear();
  welcomed = false;
  ui.message.value = "";
  ui.queueStatus.textContent = t("waiting_joining");
  ui.composerError.textContent = "";
  ui.survey.reset();
  ui.endConfirm.hidden = true;
  ui.endButton.setAttribute("aria-expanded", "false");
  ui.endButton.disabled = false;
}

// ---------------------------------------------------------------- user actions

ui.startForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const nickname = ui.nickname.value.trim();
  showStartNotice("");
  if (!nickname) {
    showNicknameError(t("nickname_required"));
    return;
  }
  clearNicknameError();
  clearSession();
  resetConversation();
  pendingHello = { nickname, topic: ui.topic.value };
  setPhase("joining");
  if (socket.isOpen) sendHello();
  else if (socket.state === "stopped") socket.connect();
});

ui.suggest.addEventListener("click", async () => {
  try {
    const data = await getJSON(`/api/nickname-suggestion?lang=${lang}`);
    if (data && typeof data.nickname === "string") {
      ui.nickname.value = data.nickname;
      clearNicknameError();
      ui.nickname.focus();
    }
  } catch {
    showNicknameError(t("error_generic"));
  }
});

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text) return;
  if (text.length > config.text_max_chars) {
    showComposerError(t("too_long", { max: config.text_max_chars }));
    return;
  }
  showComposerError("");
  say(text);
  ui.message.value = "";
  updateCharsLeft();
  ui.message.focus();
});

ui.message.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter makes a new line; never interrupt an IME composition.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.message.addEventListener("input", () => {
  updateCharsLeft();
  setTyping(ui.message.value.length > 0);
});

function updateCharsLeft() {
  const left = config.text_max_chars - ui.message.value.length;
  ui.charsLeft.hidden = left > 200;
  ui.charsLeft.textContent = t("chars_left", { n: left });
}

ui.endButton.addEventListener("click", () => {
  const open = ui.endConfirm.hidden;
  ui.endConfirm.hidden = !open;
  ui.endButton.setAttribute("aria-expanded", String(open));
  if (open) ui.endNo.focus();
});

ui.endNo.addEventListener("click", () => {
  ui.endConfirm.hidden = true;
  ui.endButton.setAttribute("aria-expanded", "false");
  ui.endButton.focus();
});

ui.endYes.addEventListener("click", () => {
  ui.endConfirm.hidden = true;
  ui.endButton.setAttribute("aria-expanded", "false");
  ui.endButton.disabled = true;
  setTyping(false);
  sendControl({ type: "leave" });
  // If the server does not confirm with `ended` (e.g. the connection is gone), end here anyway.
  leaveTimer = setTimeout(() => {
    if (phase === "waiting" || phase === "chatting") showEnded("visitor_left");
  }, LEAVE_FALLBACK_MS);
});

setupEndedView({
  ui,
  t,
  lang,
  log,
  sendControl,
  onForgotten: () => {
    // nothing left to resume or to send
    socket.stop();
    clearSession();
  },
});

ui.newChat.addEventListener("click", () => {
  socket.stop();
  clearSession();
  resetConversation();
  setPhase("start");
  ui.nickname.focus();
});

// ---------------------------------------------------------------- start up

onQuickExit(() => socket.stop());

applyStrings(document, t, lang);
document.title = t("visitor_title");
const langSwitch = document.querySelector("[data-lang-switch]");
setupLangSwitch(langSwitch, t, lang);
// Switch language without a new history entry: after a quick exit, Back must not land on us.
langSwitch.addEventListener("click", (event) => {
  event.preventDefault();
  location.replace(langSwitch.href);
});
ui.privacy.href = `/privacy?lang=${lang}`;
setPhase("start");

loadConfig();

// A reload of this tab (or the language switch) continues the conversation in progress.
if (session.token) {
  setPhase(session.phase === "chatting" || session.phase === "ended" ? session.phase : "waiting");
  if (session.phase === "ended") {
    // After the end there is nothing to resume; show the start screen.
    clearSession();
    setPhase("start");
  } else {
    socket.connect();
  }
}

async function loadConfig() {
  try {
    const data = await getJSON(`/api/public-config?lang=${lang}`);
    config = { ...config, ...data };
  } catch {
    return; // the page works with its defaults
  }
  setQuickExitUrl(config.quick_exit_url);
  if (config.emergency_text) ui.emergencyText.textContent = config.emergency_text;
  if (typeof config.privacy_url === "string" && config.privacy_url.startsWith("/")) {
    ui.privacy.href = `${config.privacy_url}?lang=${lang}`;
  }
  if (Number.isInteger(config.text_max_chars) && config.text_max_chars > 0) {
    ui.message.maxLength = config.text_max_chars;
  }
  const keep = ui.topic.value;
  ui.topic.replaceChildren(ui.topic.options[0]);
  for (const topic of config.topics || []) {
    ui.topic.append(el("option", { value: topic.id }, topic.label));
  }
  ui.topic.value = keep;
}
