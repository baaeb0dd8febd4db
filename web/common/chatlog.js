// One conversation's messages, rendered into a role="log" element, ordered by `seq`.
//
// The server numbers messages 1, 2, 3 ... per conversation with no gaps. We keep one entry per
// seq, so a message that arrives twice (a resumed visitor gets everything after last_seq again,
// a reconnected console gets the whole history in `assigned`) is shown once, and one that
// arrives late is put in its place. Our own unacknowledged messages are "pending" entries
// (keyed by `ref`, shown as "sending…") at the end of the log until their `ack` gives them a seq.
// Notices (pii warnings, "reconnecting", etc.) have no seq; they are appended where they occur.

import { el } from "./dom.js";
import { formatClock } from "./format.js";

const FLAG_ORDER = ["crisis", "abuse", "pii"];

/** The moderation marks we know, in a fixed order (crisis first); anything else is ignored. */
export function knownFlags(flags) {
  if (!Array.isArray(flags)) return [];
  return FLAG_ORDER.filter((f) => flags.includes(f));
}

export class ChatLog {
  /**
   * @param {HTMLElement} container the role="log" element
   * @param {object} options
   *   lang: "nl" | "en"
   *   mine(msg) → true for messages of this page's own side (styled apart)
   *   authorOf(msg) → the name shown above a message
   *   t(key) → translated text ("sending", "not_sent", "flags_label", "flag_<name>")
   *   showFlags: true on staff pages: moderation marks (`flags`) are shown as text badges.
   *     Never on the visitor's page (a resumed visitor gets its own messages again, with flags).
   */
  constructor(container, { lang, mine, authorOf, t, showFlags = false }) {
    this.container = container;
    this.showFlags = showFlags;
    this.lang = lang;
    this.mine = mine;
    this.authorOf = authorOf;
    this.t = t;
    this.bySeq = new Map(); // seq → {msg, node}
    this.pending = new Map(); // ref → {text, node}
  }

  clear() {
    this.bySeq.clear();
    this.pending.clear();
    this.container.replaceChildren();
  }

  /** Highest n such that messages 1..n are all here: the safe `last_seq` for a resume. */
  contiguousSeq() {
    let n = 0;
    while (this.bySeq.has(n + 1)) n += 1;
    return n;
  }

  highestSeq() {
    let max = 0;
    for (const seq of this.bySeq.keys()) max = Math.max(max, seq);
    return max;
  }

  has(seq) {
    return this.bySeq.has(seq);
  }

  /** Add a `message` (or a history item). Returns false if that seq was already shown. */
  addMessage(msg) {
    const seq = Number(msg.seq);
    if (!Number.isInteger(seq) || this.bySeq.has(seq)) return false;
    const node = this.renderMessage(msg);
    this.bySeq.set(seq, { msg, node });
    this.place(node, seq);
    this.scrollToEnd();
    return true;
  }

  renderMessage(msg, pending = false) {
    const from = ["visitor", "counsellor", "system"].includes(msg.from) ? msg.from : "system";
    const classes = ["msg", `msg--${from}`];
    if (this.mine(msg)) classes.push("msg--mine");
    if (pending) classes.push("msg--pending");
    const meta = el("p", { class: "msg__meta" });
    const author = this.authorOf(msg);
    if (author) meta.append(el("span", { class: "msg__author" }, author));
    const time = el("span", { class: "msg__time" });
    if (typeof msg.ts === "number") time.textContent = formatClock(msg.ts, this.lang);
    meta.append(time);
    const status = el("span", { class: "msg__status" }, pending ? this.t("sending") : "");
    meta.append(status);
    const flags = this.showFlags ? knownFlags(msg.flags) : [];
    if (flags.length) {
      meta.append(
        el(
          "span",
          { class: "msg__flags", dataset: { testid: "message-flags" } },
          el("span", { class: "visually-hidden" }, `${this.t("flags_label")}: `),
          ...flags.map((f) => el("span", { class: `flag flag--${f}`, dataset: { flag: f } }, this.t(`flag_${f}`))),
        ),
      );
    }
    const node = el(
      "div",
      { class: classes.join(" "), dataset: { testid: "message", from } },
      meta,
      el("p", { class: "msg__text" }, msg.text ?? ""),
    );
    if (!pending) node.dataset.seq = String(msg.seq);
    if (flags.length) node.classList.add("msg--flagged", ...flags.map((f) => `msg--flag-${f}`));
    return node;
  }

  /** Insert a seq'd node before the first message with a higher seq, else before the pending
   * ones (which always stay at the end), else at the end. */
  place(node, seq) {
    const children = [...this.container.children];
    const later = children.find((c) => c.dataset.seq && Number(c.dataset.seq) > seq);
    const firstPending = children.find((c) => c.classList.contains("msg--pending"));
    this.container.insertBefore(node, later || firstPending || null);
  }

  /** Our own message, sent but not yet acknowledged. */
  addPending(ref, msg) {
    const node = this.renderMessage(msg, true);
    node.dataset.ref = ref;
    this.pending.set(ref, { msg, node });
    this.container.append(node);
    this.scrollToEnd();
  }

  /** The server stored our message under `seq`. */
  confirm(ref, seq, ts) {
    const entry = this.pending.get(ref);
    if (!entry) return;
    this.pending.delete(ref);
    if (!Number.isInteger(seq) || this.bySeq.has(seq)) {
      entry.node.remove(); // already shown (e.g. replayed on resume)
      return;
    }
    // Turn the pending node into the stored message in place, so that screen readers do not
    // hear it a second time; move it only if a later message is already above it.
    const msg = { ...entry.msg, seq, ts: typeof ts === "number" ? ts : entry.msg.ts };
    const node = entry.node;
    node.classList.remove("msg--pending");
    node.dataset.seq = String(seq);
    delete node.dataset.ref;
    node.querySelector(".msg__status").textContent = "";
    if (typeof msg.ts === "number") node.querySelector(".msg__time").textContent = formatClock(msg.ts, this.lang);
    this.bySeq.set(seq, { msg, node });
    const later = [...this.container.children].find(
      (c) => c !== node && c.dataset.seq && Number(c.dataset.seq) > seq,
    );
    const firstPending = [...this.container.children].find((c) => c.classList.contains("msg--pending"));
    const misplaced =
      (later && later.compareDocumentPosition(node) & Node.DOCUMENT_POSITION_FOLLOWING) ||
      (firstPending && firstPending.compareDocumentPosition(node) & Node.DOCUMENT_POSITION_FOLLOWING);
    if (misplaced) this.place(node, seq);
  }

  /** The server refused our message: take it out of the log and return its text. */
  drop(ref) {
    const entry = this.pending.get(ref);
    if (!entry) return null;
    this.pending.delete(ref);
    entry.node.remove();
    return entry.msg.text;
  }

  /** A line without seq: notices, "X joined", an ended marker. kind is a CSS modifier. */
  addNotice(text, kind = "info") {
    const node = el(
      "p",
      { class: `notice notice--${kind}`, dataset: { testid: "notice", kind } },
      text,
    );
    this.container.append(node);
    this.scrollToEnd();
    return node;
  }

  /** Messages in seq order (for the transcript download). */
  messages() {
    return [...this.bySeq.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e.msg);
  }

  scrollToEnd() {
    this.container.scrollTop = this.container.scrollHeight;
  }
}
