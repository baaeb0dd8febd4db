// The end of a visitor's conversation: the short survey (sent as `survey`, only after `ended`)
// and "Save this conversation", which builds a .txt file in the browser (Blob + download link;
// nothing goes to the server).

import { el } from "./common/dom.js";
import { formatClock, formatDate } from "./common/format.js";

/**
 * @param {object} o ui (elements of visitor.html), t, lang, log (ChatLog),
 *   sendControl(frame, onRefused, onDone) (sends once the connection is welcomed),
 *   onForgotten() (the server deleted the conversation)
 */
export function setupEndedView({ ui, t, lang, log, sendControl, onForgotten = () => {} }) {
  function readSurvey() {
    const data = new FormData(ui.survey);
    const result = { rating: Number(data.get("rating")) };
    if (data.get("understood")) result.understood = data.get("understood") === "yes";
    const comment = String(data.get("comment") || "").trim();
    if (comment) result.comment = comment;
    return result;
  }

  ui.survey.addEventListener("submit", (event) => {
    event.preventDefault();
    const answers = readSurvey();
    if (!(answers.rating >= 1 && answers.rating <= 5)) {
      ui.surveyError.textContent = t("survey_need_rating");
      ui.survey.querySelector("input[name=rating]").focus();
      return;
    }
    ui.surveyError.textContent = "";
    sendControl({ type: "survey", ...answers }, (message) => {
      ui.survey.hidden = false;
      ui.surveyThanks.textContent = "";
      ui.surveyError.textContent = message;
    });
    ui.survey.hidden = true;
    ui.surveyThanks.textContent = t("survey_thanks");
  });

  // "Delete this conversation": after a confirmation, `forget` deletes it from the server now.
  function closeForget() {
    ui.forgetConfirm.hidden = true;
    ui.forget.setAttribute("aria-expanded", "false");
  }

  ui.forget.addEventListener("click", () => {
    const open = ui.forgetConfirm.hidden;
    ui.forgetConfirm.hidden = !open;
    ui.forget.setAttribute("aria-expanded", String(open));
    if (open) ui.forgetNo.focus();
  });

  ui.forgetNo.addEventListener("click", () => {
    closeForget();
    ui.forget.focus();
  });

  ui.forgetYes.addEventListener("click", () => {
    closeForget();
    ui.forget.disabled = true;
    ui.forgetStatus.textContent = t("forget_busy");
    sendControl(
      { type: "forget" },
      (message) => {
        ui.forget.disabled = false;
        ui.forgetStatus.textContent = t("forget_failed", { message });
        ui.forget.focus();
      },
      () => {
        log.clear();
        ui.survey.hidden = true;
        ui.save.hidden = true;
        ui.forget.hidden = true;
        ui.forgetStatus.textContent = t("forget_done");
        onForgotten();
      },
    );
  });

  ui.save.addEventListener("click", () => {
    const lines = [t("transcript_title", { date: formatDate(new Date(), lang) }), ""];
    for (const msg of log.messages()) {
      const time = typeof msg.ts === "number" ? `[${formatClock(msg.ts, lang)}] ` : "";
      const author = msg.from === "visitor" ? t("you") : msg.author || "";
      lines.push(`${time}${author ? `${author}: ` : ""}${msg.text}`);
    }
    const blob = new Blob([`\ufeff${lines.join("\r\n")}\r\n`], { type: "text/plain;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const day = new Date().toISOString().slice(0, 10);
    const link = el("a", { href: url, download: `${t("transcript_file")}-${day}.txt`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
  });
}
