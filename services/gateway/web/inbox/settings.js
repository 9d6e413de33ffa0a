// Chat settings: when the shop's chat is staffed (always, or weekly hours in the shop's time
// zone), the away message sent outside them, and an instant answer per topic. One form, saved
// with one button; what the server refuses is shown with its reason. Staff without the
// messaging permission see the settings read-only.

import { dialogShell } from "./dialogs.js";
import { currentTimeZone, el, fill, get, put, topicName } from "./lib.js";

const DAYS = [
  ["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
  ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"],
];
const PLACEHOLDERS = "{{ customer_first_name }}, {{ customer_name }}, {{ order_number }}, {{ shop_name }} ({{ staff_name }} stays empty: nobody wrote it)";

/** "Monday, 7 Dec, 09:00" in the shop's time zone, which the hours are in. */
function when(iso) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: "long", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    timeZone: currentTimeZone(),
  }).format(new Date(iso));
}

/** "Available now", or when the chat is next staffed. */
function statusText(settings) {
  if (settings.available) return "Available now.";
  if (settings.next_available_at) return `Away now: back ${when(settings.next_available_at)}.`;
  return "Away now: no hours are set, so nobody is shown as there.";
}

/** The weekly editor: per day, closed or one or more ranges (from, to). */
class WeekEditor {
  constructor() {
    this.ranges = new Map(DAYS.map(([day]) => [day, []]));  // day -> [{from, to}]
    this.node = el("div", { class: "week", role: "group", "aria-label": "Weekly hours" });
    this.readOnly = false;
  }

  set(hours) {
    for (const list of this.ranges.values()) list.length = 0;
    for (const range of hours) this.ranges.get(range.day)?.push({ from: range.from, to: range.to });
    this.render();
  }

  /** The ranges as the API takes them, in the order shown. */
  value() {
    return DAYS.flatMap(([day]) => this.ranges.get(day).map((r) => ({ day, from: r.from.trim(), to: r.to.trim() })));
  }

  render(focus = null) {
    fill(this.node, DAYS.map(([day, name]) => {
      const list = this.ranges.get(day);
      const rows = list.map((range, index) => {
        const label = list.length > 1 ? `${name} range ${index + 1}` : name;
        const input = (which) => {
          const field = el("input", {
            class: "clock", value: range[which], maxlength: 5, size: 5, inputmode: "numeric",
            placeholder: "HH:MM", autocomplete: "off", "aria-label": `${label} ${which}`,
            "data-key": `${day}-${index}-${which}`, disabled: this.readOnly,
          });
          field.addEventListener("input", () => { range[which] = field.value; });
          return field;
        };
        return el("li", { class: "range" },
          input("from"), el("span", { "aria-hidden": "true", text: "\u2013" }), input("to"),
          this.readOnly ? null : el("button", {
            type: "button", class: "quiet", text: "Remove", "aria-label": `Remove ${label}`,
            onclick: () => { list.splice(index, 1); this.render(`${day}-add`); },
          }));
      });
      return el("div", { class: "day", "data-day": day },
        el("span", { class: "day-name", text: name }),
        list.length ? el("ul", { class: "ranges" }, rows) : el("span", { class: "muted closed", text: "Closed" }),
        this.readOnly ? null : el("button", {
          type: "button", class: "quiet add-range", "data-key": `${day}-add`,
          text: "Add hours", "aria-label": `Add hours on ${name}`,
          onclick: () => {
            // A first range is a working day; a further one starts where the last one ended.
            const last = list.at(-1);
            list.push(last ? { from: last.to, to: "" } : { from: "09:00", to: "17:00" });
            this.render(`${day}-${list.length - 1}-from`);
          },
        }));
    }));
    if (focus) this.node.querySelector(`[data-key="${focus}"]`)?.focus();
  }
}

/** The chat settings dialog; `canChange`: the staff member holds the messaging permission. */
export function showChatSettings({ canChange, toast = () => {} }) {
  const { dialog, body } = dialogShell("Chat settings", { wide: true });
  const status = el("p", { class: "chat-status", id: "chat-status", role: "status" });
  const zone = el("p", { class: "hint" });
  const always = el("input", { type: "radio", name: "chat-mode", value: "always", id: "mode-always" });
  const hoursMode = el("input", { type: "radio", name: "chat-mode", value: "hours", id: "mode-hours" });
  const week = new WeekEditor();
  week.readOnly = !canChange;
  const away = el("textarea", { id: "away-message", rows: 3, maxlength: 1000, required: true,
                                "aria-describedby": "away-message-hint" });
  const answers = el("ul", { class: "instant-answers", "aria-label": "Instant answers" });
  const error = el("p", { class: "error", role: "alert" });
  const saved = el("p", { class: "hint", role: "status" });
  const save = el("button", { type: "submit", class: "primary", text: "Save chat settings" });
  /** topic -> {switch, text, saved: {enabled, text}} */
  const topics = new Map();

  const showWeek = () => { week.node.hidden = !hoursMode.checked; };
  always.addEventListener("change", showWeek);
  hoursMode.addEventListener("change", showWeek);

  const fields = el("fieldset", { class: "settings-fields", disabled: !canChange },
    el("legend", { class: "visually-hidden", text: "Chat settings" }),
    el("section", { class: "settings-section", "aria-labelledby": "hours-title" },
      el("h3", { id: "hours-title", text: "Chat hours" }),
      status, zone,
      el("div", { class: "mode", role: "radiogroup", "aria-label": "When the chat is staffed" },
        el("label", {}, always, " Always available"),
        el("label", {}, hoursMode, " Set hours")),
      week.node,
      el("label", { for: "away-message", text: "Away message" }), away,
      el("p", { id: "away-message-hint", class: "hint",
                text: "Sent once to a customer who writes outside your hours, marked as automated." })),
    el("section", { class: "settings-section", "aria-labelledby": "answers-title" },
      el("h3", { id: "answers-title", text: "Instant answers" }),
      el("p", { class: "hint",
                text: "Sent automatically when a customer's message is about the topic, once per topic in a conversation, and not while staff wrote in it in the last 10 minutes. Placeholders: " + PLACEHOLDERS }),
      answers));
  // Kept in view at the foot of the long form: the reason for a refusal and the button (or
  // why there is none).
  const form = el("form", { class: "stack chat-settings" }, fields,
    el("div", { class: "settings-footer" }, error, saved, canChange
      ? el("div", { class: "row-end" }, save)
      : el("p", { class: "note read-only", text: "Only staff with the messaging permission can change these settings." })));
  body.append(form);

  function showHours(settings) {
    (settings.mode === "hours" ? hoursMode : always).checked = true;
    week.set(settings.hours);
    showWeek();
    away.value = settings.away_message;
    status.textContent = statusText(settings);
    status.className = `chat-status ${settings.available ? "open" : "away"}`;
    zone.textContent = `Times are in the shop's time zone, ${settings.time_zone}. A night shift is two ranges: to 24:00, and from 00:00 the next day.`;
  }

  function showAnswers(items) {
    topics.clear();
    fill(answers, items.map((item) => {
      const id = `answer-${item.topic}`;
      const name = item.name || topicName(item.topic);
      const toggle = el("input", { type: "checkbox", role: "switch", id: `${id}-on`, checked: item.enabled });
      const text = el("textarea", { id, rows: 2, maxlength: 2000, "aria-label": `${name} instant answer` });
      text.value = item.text;
      topics.set(item.topic, { name, toggle, text, saved: { enabled: item.enabled, text: item.text } });
      return el("li", { class: "instant-answer", "data-topic": item.topic },
        el("label", { class: "answer-switch", for: `${id}-on` }, toggle, ` ${name}`), text);
    }));
  }

  async function load() {
    try {
      const [settings, list] = await Promise.all([get("/settings/availability"), get("/settings/instant-answers")]);
      showHours(settings);
      showAnswers(list.items);
    } catch (e) {
      error.textContent = e.message;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    saved.textContent = "";
    save.disabled = true;
    // Hours first, then each instant answer that changed; the first refusal stops and says
    // which part it was (what was saved before it stays saved).
    let part = "Chat hours";
    try {
      showHours(await put("/settings/availability", {
        mode: hoursMode.checked ? "hours" : "always",
        hours: week.value(),
        away_message: away.value,
      }));
      for (const [topic, t] of topics) {
        const wanted = { enabled: t.toggle.checked, text: t.text.value.trim() };
        if (wanted.enabled === t.saved.enabled && wanted.text === t.saved.text) continue;
        part = `Instant answer for ${t.name}`;
        const answer = await put(`/settings/instant-answers/${topic}`, wanted);
        t.saved = { enabled: answer.enabled, text: answer.text };
        t.text.value = answer.text;
      }
      saved.textContent = "Saved.";
      toast("Chat settings saved.");
    } catch (e) {
      error.textContent = `${part}: ${e.message}`;
    } finally {
      save.disabled = false;
    }
  });

  dialog.showModal();
  load();
  return dialog;
}
