// The supervisor's read-only view of one conversation: the log (from `watching.history`, then
// live `message`/`typing`), the whispers, and the whisper box. Nothing here can reach the
// visitor: the only frame it sends is `whisper`, which the server delivers to the counsellor
// and the watchers.

import { ChatLog } from "./common/chatlog.js";
import { el, newRef } from "./common/dom.js";
import { formatClock, nowSeconds } from "./common/format.js";

const TYPING_SHOW_MS = 10000;

export class WatchPanel {
  /**
   * @param {object} info {conversation_id, visitor, counsellor} (from the overview)
   * @param {object} ctx {t, lang, send(frame) → bool, me(), onClose(panel)}
   */
  constructor(info, ctx) {
    this.id = info.conversation_id;
    this.ctx = ctx;
    this.visitor = info.visitor || "?";
    this.counsellor = info.counsellor || "?";
    this.pendingWhispers = new Map(); // ref → <li>
    this.typingTimer = null;
    this.build();
    this.log = new ChatLog(this.logEl, {
      lang: ctx.lang,
      t: ctx.t,
      showFlags: true,
      mine: () => false,
      authorOf: (msg) => msg.author || (msg.from === "visitor" ? this.visitor : ""),
    });
  }

  build() {
    const { t } = this.ctx;
    this.title = el("h2", { id: "watch-title" }, this.titleText());
    const close = el("button", { type: "button", class: "btn", dataset: { testid: "stop-watch" } }, t("stop_watch"));
    close.addEventListener("click", () => this.ctx.onClose(this));
    this.logEl = el("div", {
      class: "log",
      role: "log",
      "aria-live": "polite",
      "aria-labelledby": "watch-title",
      tabindex: "0",
      dataset: { testid: "watch-log" },
    });
    this.typingEl = el("p", { class: "typing", hidden: true });
    this.status = el("p", { class: "error", role: "alert" });
    this.whisperList = el("ul", { class: "whispers__list", "aria-live": "polite", dataset: { testid: "whispers" } });
    this.textarea = el("textarea", { id: "whisper-text", rows: "2", maxlength: "2000", "aria-describedby": "whisper-hint" });
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submitWhisper();
      }
    });
    const form = el(
      "form",
      { class: "whisper-form", novalidate: true, dataset: { testid: "whisper-form" } },
      el("label", { for: "whisper-text" }, t("whisper_label")),
      el(
        "div",
        { class: "whisper-form__row" },
        this.textarea,
        el("button", { type: "submit", class: "btn btn--primary" }, t("whisper_send")),
      ),
      el("p", { class: "hint", id: "whisper-hint" }, t("whisper_hint")),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submitWhisper();
    });
    this.section = el(
      "section",
      { class: "watch", "aria-labelledby": "watch-title", dataset: { testid: "watch", conversationId: this.id } },
      el("div", { class: "watch__head" }, this.title, close),
      this.status,
      this.logEl,
      this.typingEl,
      el(
        "aside",
        { class: "whispers", "aria-labelledby": "whispers-h" },
        el("h3", { id: "whispers-h" }, t("whispers_h")),
        this.whisperList,
      ),
      form,
    );
  }

  titleText() {
    return this.ctx.t("watch_title", { visitor: this.visitor, counsellor: this.counsellor });
  }

  /** Overview rows change (e.g. a transfer gives another counsellor). */
  update(info) {
    if (info.visitor) this.visitor = info.visitor;
    if (info.counsellor) this.counsellor = info.counsellor;
    this.title.textContent = this.titleText();
  }

  // ------------------------------------------------------------ incoming

  onWatching(frame) {
    for (const msg of frame.history || []) this.log.addMessage(msg);
  }

  onMessage(frame) {
    if (this.log.addMessage(frame) && frame.from === "visitor") this.showTyping(false);
  }

  onTyping(frame) {
    if (frame.from === "visitor") this.showTyping(Boolean(frame.active));
  }

  showTyping(active) {
    clearTimeout(this.typingTimer);
    this.typingEl.hidden = !active;
    if (active) {
      this.typingEl.textContent = this.ctx.t("typing", { name: this.visitor });
      this.typingTimer = setTimeout(() => this.showTyping(false), TYPING_SHOW_MS);
    }
  }

  /** A whisper from anyone (our own comes back too: it replaces the pending copy). */
  onWhisper(frame) {
    for (const [ref, item] of this.pendingWhispers) {
      if (item.dataset.text === frame.text) {
        this.pendingWhispers.delete(ref);
        item.remove();
        break;
      }
    }
    this.whisperList.append(this.renderWhisper(frame.author, frame.text, frame.ts, false));
  }

  onAck(frame) {
    // Stored. Keep the copy in pendingWhispers: the server's whisper frame (which may come
    // after this ack) replaces it, so it is shown once.
    const item = this.pendingWhispers.get(frame.ref);
    if (!item) return false;
    item.classList.remove("whisper--pending");
    return true;
  }

  onError(frame) {
    const item = this.pendingWhispers.get(frame.ref);
    if (item) {
      this.pendingWhispers.delete(frame.ref);
      item.remove();
      if (!this.textarea.value) this.textarea.value = item.dataset.text;
    }
    this.status.textContent = frame.message || this.ctx.t("error_generic");
  }

  onEnded() {
    this.showTyping(false);
    this.log.addNotice(this.ctx.t("watch_ended"), "ended");
  }

  renderWhisper(author, text, ts, pending) {
    const time = typeof ts === "number" ? formatClock(ts, this.ctx.lang) : "";
    const item = el(
      "li",
      { class: `whisper${pending ? " whisper--pending" : ""}`, dataset: { testid: "whisper" } },
      el("span", { class: "whisper__meta" }, [author, time].filter(Boolean).join(" · ")),
      el("span", { class: "whisper__text" }, text || ""),
    );
    item.dataset.text = text || "";
    return item;
  }

  // ------------------------------------------------------------ outgoing

  submitWhisper() {
    const text = this.textarea.value.trim();
    if (!text) return;
    const ref = newRef();
    this.status.textContent = "";
    if (!this.ctx.send({ type: "whisper", conversation_id: this.id, text, ref })) {
      this.status.textContent = this.ctx.t("conn_down");
      return;
    }
    const item = this.renderWhisper(this.ctx.me(), text, nowSeconds(), true);
    this.pendingWhispers.set(ref, item);
    this.whisperList.append(item);
    this.textarea.value = "";
  }
}
