// One conversation in the counsellor console: its tab, its panel (log, typing line, composer,
// help and wrap-up), its whispers, and its outbox of unacknowledged messages.
//
// The panel only builds DOM and keeps state; it talks to the server through the `send`
// callback it is given (which returns false while the socket is down; the outbox is resent
// by staff.js after the next `welcome`).

import { ChatLog, knownFlags } from "./common/chatlog.js";
import { el, newRef } from "./common/dom.js";
import { formatClock, formatDuration, nowSeconds } from "./common/format.js";

const TYPING_IDLE_MS = 4000;
const TYPING_SHOW_MS = 10000;

let counter = 0;

/** A notice in the page's language. The server's `message` is a fallback: some are written
 * in both languages at once ("Bert kijkt mee / Bert is watching"), which we never show as is. */
export function noticeText(frame, t, lang) {
  const code = String(frame.code || "");
  const message = String(frame.message || "");
  if (code === "watched") {
    const name = typeof frame.name === "string" && frame.name ? frame.name : message.split(" kijkt mee")[0];
    return name && name !== message ? t("staff_notice_watched_name", { name }) : t("staff_notice_watched");
  }
  const key = `staff_notice_${code}`;
  if (t(key) !== key) return t(key);
  // "nl text / en text": keep the half in the page's language
  const halves = message.split(" / ");
  if (halves.length === 2) return lang === "en" ? halves[1] : halves[0];
  return message || code;
}

export class ConversationPanel {
  /**
   * @param {object} info the `assigned` frame
   * @param {object} ctx {t, lang, send(frame) → bool, topics: [{id,label}], onSelect(panel),
   *                      onClose(panel), onUnreadChange(), maxChars}
   */
  constructor(info, ctx) {
    this.id = info.conversation_id;
    this.ctx = ctx;
    this.visitor = info.visitor || "?";
    this.topic = info.topic || "";
    this.waited = info.waited_seconds;
    this.ended = false;
    this.wrappedUp = false;
    this.unread = 0;
    this.crisis = false;
    this.blocked = false;
    /** A conversation that arrived in a tab that is not in front, not yet looked at. */
    this.fresh = false;
    this.outbox = new Map(); // ref → text
    this.controlRefs = new Map(); // ref → "help" | "end"
    this.typingSent = false;
    this.typingTimer = null;
    this.typingShowTimer = null;
    this.domId = `conv-${++counter}`;
    this.build();
    this.log = new ChatLog(this.logEl, {
      lang: ctx.lang,
      t: ctx.t,
      showFlags: true,
      mine: (msg) => msg.from === "counsellor",
      authorOf: (msg) => msg.author || (msg.from === "visitor" ? this.visitor : ""),
    });
    this.addHistory(info.history || []);
  }

  // ------------------------------------------------------------ DOM

  build() {
    const { t } = this.ctx;
    const id = this.domId;
    this.badge = el("span", { class: "tab__badge", dataset: { testid: "unread" } });
    this.tabLabel = el("span", { class: "tab__label" }, this.visitor);
    this.tabCrisis = el("span", { class: "tab__crisis", hidden: true, dataset: { testid: "tab-crisis" } }, t("flag_crisis"));
    this.tab = el(
      "button",
      {
        type: "button",
        role: "tab",
        class: "tab",
        id: `${id}-tab`,
        "aria-selected": "false",
        tabindex: "-1",
        dataset: { testid: "conversation-tab", conversationId: this.id },
      },
      this.tabLabel,
      this.tabCrisis,
      this.badge,
    );
    this.tab.addEventListener("click", () => this.ctx.onSelect(this));

    this.logEl = el("div", {
      class: "log",
      role: "log",
      "aria-live": "polite",
      "aria-label": t("conversation_with", { name: this.visitor }),
      tabindex: "0",
      dataset: { testid: "log" },
    });
    this.typingEl = el("p", { class: "typing", hidden: true, dataset: { testid: "typing" } });
    this.facts = el("p", { class: "conv__facts" });
    this.renderFacts();

    this.textarea = el("textarea", {
      id: `${id}-message`,
      rows: "3",
      maxlength: String(this.ctx.maxChars()),
      "aria-describedby": `${id}-composer-error`,
      dataset: { testid: "message-input" },
    });
    this.composerError = el("p", { class: "error", id: `${id}-composer-error`, role: "alert" });
    this.sendButton = el("button", { type: "submit", class: "btn btn--primary", dataset: { testid: "send" } }, t("send"));
    this.composer = el(
      "form",
      { class: "composer", novalidate: true },
      el("label", { for: `${id}-message` }, t("message_label")),
      el("div", { class: "composer__row" }, this.textarea, this.sendButton),
      this.composerError,
    );
    this.composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submitMessage();
    });
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submitMessage();
      }
    });
    this.textarea.addEventListener("input", () => this.setTyping(this.textarea.value.length > 0));

    this.info = el("p", { class: "conv__info", role: "status" });
    this.helpButton = el("button", { type: "button", class: "btn", dataset: { testid: "help" } }, t("help"));
    this.helpButton.addEventListener("click", () => this.askHelp());
    this.endButton = el(
      "button",
      {
        type: "button",
        class: "btn btn--danger",
        "aria-expanded": "false",
        "aria-controls": `${id}-wrapup`,
        dataset: { testid: "end" },
      },
      t("end"),
    );
    this.endButton.addEventListener("click", () => this.toggleWrapup(true));
    this.blockButton = el(
      "button",
      {
        type: "button",
        class: "btn btn--danger-quiet",
        "aria-expanded": "false",
        "aria-controls": `${id}-block`,
        dataset: { testid: "block" },
      },
      t("block"),
    );
    this.blockButton.addEventListener("click", () => this.toggleBlock(this.blockConfirm.hidden));
    this.blockConfirm = this.buildBlockConfirm();
    this.closeButton = el("button", { type: "button", class: "btn", hidden: true }, t("close_tab"));
    this.closeButton.addEventListener("click", () => this.ctx.onClose(this));

    this.wrapup = this.buildWrapup();

    this.whisperList = el("ul", { class: "whispers__list", "aria-live": "polite", dataset: { testid: "whispers" } });
    this.noWhispers = el("li", { class: "empty" }, t("no_whispers"));
    this.whisperList.append(this.noWhispers);

    this.panel = el(
      "section",
      {
        class: "conv",
        role: "tabpanel",
        id: `${id}-panel`,
        "aria-labelledby": `${id}-tab`,
        hidden: true,
        dataset: { testid: "conversation", conversationId: this.id },
      },
      el(
        "div",
        { class: "conv__main" },
        el("div", { class: "conv__head" }, el("h2", {}, t("conversation_with", { name: this.visitor })), this.facts),
        this.logEl,
        this.typingEl,
        this.composer,
        el(
          "div",
          { class: "conv__actions" },
          this.helpButton,
          this.endButton,
          this.blockButton,
          this.closeButton,
          this.info,
        ),
        this.blockConfirm,
        this.wrapup,
      ),
      el(
        "aside",
        { class: "whispers", "aria-labelledby": `${id}-whispers-h`, dataset: { testid: "whisper-panel" } },
        el("h3", { id: `${id}-whispers-h` }, t("whisper_panel")),
        this.whisperList,
      ),
    );
  }

  buildBlockConfirm() {
    const { t } = this.ctx;
    const id = this.domId;
    this.blockYes = el("button", { type: "button", class: "btn btn--danger", dataset: { testid: "block-yes" } }, t("block_yes"));
    this.blockYes.addEventListener("click", () => this.submitBlock());
    const no = el("button", { type: "button", class: "btn", dataset: { testid: "block-no" } }, t("cancel"));
    no.addEventListener("click", () => this.toggleBlock(false));
    this.blockError = el("p", { class: "error", role: "alert" });
    return el(
      "div",
      {
        class: "block-confirm",
        id: `${id}-block`,
        role: "group",
        "aria-labelledby": `${id}-block-q`,
        hidden: true,
        dataset: { testid: "block-confirm" },
      },
      el("p", { id: `${id}-block-q`, class: "block-confirm__q" }, t("block_confirm", { name: this.visitor })),
      el("p", { class: "block-confirm__hint" }, t("block_hint")),
      this.blockError,
      el("div", { class: "conv__actions" }, this.blockYes, no),
    );
  }

  toggleBlock(open) {
    this.blockConfirm.hidden = !open;
    this.blockButton.setAttribute("aria-expanded", String(open));
    this.blockError.textContent = "";
    if (open) this.blockYes.focus();
    else this.blockButton.focus();
  }

  submitBlock() {
    const ref = newRef();
    this.controlRefs.set(ref, "block");
    this.blockError.textContent = "";
    if (!this.ctx.send({ type: "block", conversation_id: this.id, ref })) {
      this.controlRefs.delete(ref);
      this.blockError.textContent = this.ctx.t("conn_down");
      return;
    }
    this.blockYes.disabled = true;
  }

  buildWrapup() {
    const { t } = this.ctx;
    const id = this.domId;
    this.wrapupTopics = el("div", { class: "wrapup__topics" });
    this.wrapupNote = el("textarea", { id: `${id}-note`, rows: "3", maxlength: "2000" });
    this.wrapupError = el("p", { class: "error", role: "alert" });
    const submit = el("button", { type: "submit", class: "btn btn--danger" }, t("wrapup_submit"));
    const cancel = el("button", { type: "button", class: "btn" }, t("cancel"));
    cancel.addEventListener("click", () => this.toggleWrapup(false));
    const form = el(
      "form",
      { class: "wrapup", id: `${id}-wrapup`, hidden: true, novalidate: true, dataset: { testid: "wrapup" } },
      el("h3", {}, t("wrapup_title")),
      el("fieldset", {}, el("legend", {}, t("wrapup_topics")), this.wrapupTopics),
      el("label", { class: "wrapup__label", for: `${id}-note` }, t("wrapup_note")),
      this.wrapupNote,
      this.wrapupError,
      el("div", { class: "conv__actions" }, submit, cancel),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submitWrapup();
    });
    this.fillTopics();
    return form;
  }

  /** (Re)build the topic checkboxes from public-config; the visitor's topic is pre-ticked. */
  fillTopics() {
    const checked = new Set(
      [...this.wrapupTopics.querySelectorAll("input:checked")].map((i) => i.value),
    );
    if (!checked.size && this.topic) checked.add(this.topic);
    this.wrapupTopics.replaceChildren(
      ...this.ctx.topics().map((topic) =>
        el(
          "label",
          {},
          el("input", { type: "checkbox", name: "topics", value: topic.id, checked: checked.has(topic.id) }),
          topic.label,
        ),
      ),
    );
  }

  renderFacts() {
    const { t } = this.ctx;
    const topicLabel = this.ctx.topics().find((x) => x.id === this.topic)?.label || this.topic || t("no_topic");
    let text = `${t("topic")}: ${topicLabel}`;
    if (typeof this.waited === "number") text += ` · ${t("waited")}: ${formatDuration(this.waited)}`;
    this.facts.textContent = text;
  }

  // ------------------------------------------------------------ selection and unread marks

  /** Only the selected panel is in the document, so that "Bericht" and the log are unique. */
  setSelected(selected) {
    this.selected = selected;
    this.tab.setAttribute("aria-selected", String(selected));
    this.tab.tabIndex = selected ? 0 : -1;
    // aria-controls may only point at an element in the document
    if (selected) this.tab.setAttribute("aria-controls", this.panel.id);
    else this.tab.removeAttribute("aria-controls");
    this.panel.hidden = !selected;
    if (selected) {
      if (!this.panel.isConnected) this.ctx.panels.append(this.panel);
      this.log.scrollToEnd();
      this.markRead();
    } else {
      this.panel.remove();
    }
  }

  bumpUnread() {
    if (this.selected && document.visibilityState === "visible") return;
    this.unread += 1;
    this.renderTab();
    this.ctx.onUnreadChange();
  }

  /** A new conversation in a tab behind another: marked "new", counting only the visitor's
   * messages (those written while waiting), not the arrival itself. */
  markFresh() {
    if (this.selected && document.visibilityState === "visible") return;
    this.fresh = true;
    this.unread = this.log.messages().filter((m) => m.from === "visitor").length;
    this.renderTab();
    this.ctx.onUnreadChange();
  }

  markRead() {
    if (!this.unread && !this.fresh) return;
    this.fresh = false;
    this.unread = 0;
    this.renderTab();
    this.ctx.onUnreadChange();
  }

  renderTab() {
    const { t } = this.ctx;
    // visible: a red count; for screen readers: " (2 new)" as part of the tab's name
    this.badge.replaceChildren();
    if (this.unread) {
      this.badge.append(
        el("span", { "aria-hidden": "true" }, String(this.unread)),
        el("span", { class: "visually-hidden" }, ` (${t("unread", { n: this.unread })})`),
      );
    } else if (this.fresh) {
      this.badge.append(el("span", {}, t("tab_new")));
    }
    this.tab.classList.toggle("tab--ended", this.ended);
    this.tab.classList.toggle("tab--crisis", this.crisis);
    this.tabCrisis.hidden = !this.crisis;
    this.tabLabel.textContent = this.ended ? `${this.visitor} (${t("tab_ended")})` : this.visitor;
  }

  // ------------------------------------------------------------ incoming

  /** Rebuild from `assigned.history` (also after a reconnect: duplicates are skipped by seq). */
  update(info) {
    if (info.visitor) this.visitor = info.visitor;
    if (info.topic !== undefined) this.topic = info.topic || "";
    if (typeof info.waited_seconds === "number") this.waited = info.waited_seconds;
    this.renderFacts();
    this.addHistory(info.history || []);
  }

  addHistory(history) {
    for (const msg of history) {
      if (this.log.addMessage(msg)) this.noteFlags(msg);
    }
  }

  /** A crisis-flagged message makes the whole conversation stand out in its tab. */
  noteFlags(msg) {
    if (this.crisis || !knownFlags(msg.flags).includes("crisis")) return;
    this.crisis = true;
    this.panel.classList.add("conv--crisis");
    this.renderTab();
  }

  onMessage(msg) {
    if (!this.log.addMessage(msg)) return;
    this.noteFlags(msg);
    if (msg.from === "visitor") {
      this.showTyping(false);
      this.bumpUnread();
    }
  }

  onAck(frame) {
    if (this.outbox.has(frame.ref)) {
      this.outbox.delete(frame.ref);
      this.log.confirm(frame.ref, frame.seq, frame.ts);
      return true;
    }
    const what = this.controlRefs.get(frame.ref);
    if (!what) return false;
    this.controlRefs.delete(frame.ref);
    if (what === "help") this.info.textContent = this.ctx.t("help_sent");
    if (what === "block") {
      this.blocked = true;
      this.blockConfirm.hidden = true;
      this.blockButton.hidden = true;
      this.blockButton.setAttribute("aria-expanded", "false");
      this.info.textContent = this.ctx.t("block_done");
    }
    return true;
  }

  /** An `error` with a ref of ours. Returns true if it was ours. */
  onError(frame) {
    const { t } = this.ctx;
    if (this.outbox.has(frame.ref)) {
      if (frame.code === "rate_limited" || frame.code === "unavailable") {
        setTimeout(() => this.resend(frame.ref), 2000);
        return true;
      }
      const text = this.log.drop(frame.ref);
      this.outbox.delete(frame.ref);
      if (text && !this.textarea.value) this.textarea.value = text;
      this.composerError.textContent =
        frame.code === "too_long" ? t("too_long", { max: this.ctx.maxChars() }) : frame.message || t("error_generic");
      return true;
    }
    const what = this.controlRefs.get(frame.ref);
    if (!what) return false;
    this.controlRefs.delete(frame.ref);
    if (what === "help") {
      this.info.textContent = "";
      this.composerError.textContent = t("help_failed", { message: frame.message || frame.code });
    } else if (what === "block") {
      this.blockYes.disabled = false;
      this.blockError.textContent = frame.message || t("error_generic");
    } else if (what === "end") {
      this.wrappedUp = false;
      this.wrapup.hidden = false;
      this.wrapupError.textContent = frame.message || t("error_generic");
    }
    return true;
  }

  onTyping(frame) {
    if (frame.from === "visitor") this.showTyping(Boolean(frame.active));
  }

  onWhisper(frame) {
    this.noWhispers.remove();
    const time = typeof frame.ts === "number" ? formatClock(frame.ts, this.ctx.lang) : "";
    this.whisperList.append(
      el(
        "li",
        { class: "whisper", dataset: { testid: "whisper" } },
        el("span", { class: "whisper__meta" }, [frame.author, time].filter(Boolean).join(" · ")),
        el("span", { class: "whisper__text" }, frame.text || ""),
      ),
    );
    this.bumpUnread();
  }

  onNotice(frame) {
    this.log.addNotice(noticeText(frame, this.ctx.t, this.ctx.lang), frame.code === "pii_warning" ? "warning" : "info");
  }

  onEnded(frame) {
    if (this.ended) return;
    const { t } = this.ctx;
    this.ended = true;
    this.showTyping(false);
    const key = `staff_ended_${frame.reason}`;
    const text = t(key) === key ? t("staff_ended_counsellor_ended") : t(key);
    this.log.addNotice(text, "ended");
    for (const ref of this.outbox.keys()) this.log.drop(ref);
    this.outbox.clear();
    this.textarea.disabled = true;
    this.sendButton.disabled = true;
    this.helpButton.disabled = true;
    this.blockButton.hidden = true;
    this.blockConfirm.hidden = true;
    this.closeButton.hidden = false;
    // The wrap-up stays possible after the visitor left (the server should accept `end` with a
    // `wrapup` for a conversation that just ended).
    if (this.wrappedUp) this.endButton.hidden = true;
    this.renderTab();
    this.bumpUnread();
  }

  showTyping(active) {
    clearTimeout(this.typingShowTimer);
    this.typingEl.hidden = !active;
    if (active) {
      this.typingEl.textContent = this.ctx.t("typing", { name: this.visitor });
      this.typingShowTimer = setTimeout(() => this.showTyping(false), TYPING_SHOW_MS);
    }
  }

  // ------------------------------------------------------------ outgoing

  submitMessage() {
    const text = this.textarea.value.trim();
    if (!text || this.ended) return;
    this.composerError.textContent = "";
    const ref = newRef();
    const ts = nowSeconds();
    this.outbox.set(ref, text);
    this.log.addPending(ref, { from: "counsellor", author: this.ctx.me(), text, ts });
    this.ctx.send({ type: "say", conversation_id: this.id, text, ref });
    this.textarea.value = "";
    this.setTyping(false);
  }

  resend(ref) {
    const text = this.outbox.get(ref);
    if (text !== undefined) this.ctx.send({ type: "say", conversation_id: this.id, text, ref });
  }

  resendAll() {
    for (const ref of this.outbox.keys()) this.resend(ref);
  }

  setTyping(active) {
    clearTimeout(this.typingTimer);
    if (active) this.typingTimer = setTimeout(() => this.setTyping(false), TYPING_IDLE_MS);
    if (active === this.typingSent || this.ended) return;
    this.typingSent = active;
    this.ctx.send({ type: "typing", conversation_id: this.id, active });
  }

  askHelp() {
    const ref = newRef();
    this.controlRefs.set(ref, "help");
    this.composerError.textContent = "";
    if (!this.ctx.send({ type: "help", conversation_id: this.id, ref })) {
      this.composerError.textContent = this.ctx.t("help_failed", { message: this.ctx.t("conn_down") });
      this.controlRefs.delete(ref);
      return;
    }
    // Until the server acknowledges, say that we asked; an error frame replaces this.
    this.info.textContent = this.ctx.t("help_sent");
  }

  toggleWrapup(open) {
    this.fillTopics();
    this.wrapup.hidden = !open;
    this.endButton.setAttribute("aria-expanded", String(open));
    if (open) this.wrapup.querySelector("input, textarea")?.focus();
    else this.endButton.focus();
  }

  submitWrapup() {
    const topics = [...this.wrapupTopics.querySelectorAll("input:checked")].map((i) => i.value);
    const note = this.wrapupNote.value.trim();
    const wrapup = {};
    if (topics.length) wrapup.topics = topics;
    if (note) wrapup.note = note;
    const ref = newRef();
    this.controlRefs.set(ref, "end");
    this.wrapupError.textContent = "";
    if (!this.ctx.send({ type: "end", conversation_id: this.id, wrapup, ref })) {
      this.wrapupError.textContent = this.ctx.t("conn_down");
      this.controlRefs.delete(ref);
      return;
    }
    this.wrappedUp = true;
    this.wrapup.hidden = true;
    this.endButton.setAttribute("aria-expanded", "false");
    this.endButton.hidden = true;
    this.info.textContent = this.ctx.t("wrapup_saved");
    this.closeButton.hidden = false;
    this.closeButton.focus();
  }
}
