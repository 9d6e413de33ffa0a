// Conversation reports: a period and a grouping, the period's totals, and a bar per group for
// each figure (the numbers are written beside the bars: the chart is readable without them).

import { dialogShell } from "./dialogs.js";
import { el, fill, get, query, topicName } from "./lib.js";

const FIGURES = [
  ["new_conversations", "New conversations"],
  ["with_staff_reply", "With a staff reply"],
  ["first_response_median_seconds", "First response, median"],
  ["first_response_p90_seconds", "First response, p90"],
  ["automated_replies", "Automated replies"],
  ["followed_by_order", "Followed by an order (7 days)"],
];

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "\u2013";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 129600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function shown(key, value) {
  return key.startsWith("first_response") ? duration(value) : String(value ?? 0);
}

function groupName(groupBy, group, staff) {
  if (groupBy === "topic") return group === "none" ? "No topic" : topicName(group);
  if (groupBy === "staff") return staff.get(group) || group;
  if (groupBy === "channel") return group.replaceAll("_", " ");
  return group;
}

/** A bar `percent` wide (set through the CSSOM: the page's policy allows no style attribute). */
function bar(percent) {
  const node = el("span", { class: "bar" });
  node.style.width = `${Math.round(percent)}%`;
  return node;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** The reports dialog; `staff`: staff id -> name, for the staff grouping. */
export function showReports(staff = new Map()) {
  const { dialog, body } = dialogShell("Conversation reports", { wide: true });
  const today = new Date();
  const weekAgo = new Date(today.getTime() - 6 * 86400000);
  const from = el("input", { type: "date", id: "report-from", value: isoDay(weekAgo) });
  const to = el("input", { type: "date", id: "report-to", value: isoDay(today) });
  const groupBy = el("select", { id: "report-group" },
    ...[["day", "Day"], ["staff", "Staff"], ["channel", "Channel"], ["topic", "Topic"]]
      .map(([value, label]) => el("option", { value }, label)));
  const totals = el("dl", { class: "report-totals", "aria-label": "Totals for the period" });
  const charts = el("div", { class: "report-charts" });
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "report-form" },
    el("label", { for: "report-from", text: "From" }), from,
    el("label", { for: "report-to", text: "To" }), to,
    el("label", { for: "report-group", text: "Group by" }), groupBy,
    el("button", { type: "submit", class: "primary", text: "Show" }));
  body.append(form, error, totals, charts);

  async function load() {
    error.textContent = "";
    try {
      const report = await get(`/reports/conversations${query({
        from: from.value, to: to.value, group_by: groupBy.value })}`);
      fill(totals, FIGURES.flatMap(([key, label]) => [
        el("dt", { text: label }), el("dd", { "data-figure": key, text: shown(key, report.total[key]) })]));
      fill(charts, FIGURES.map(([key, label]) => {
        const top = Math.max(1, ...report.groups.map((g) => g[key] || 0));
        return el("section", { class: "report-chart", "data-figure": key },
          el("h3", { text: label }),
          report.groups.length ? el("ul", { class: "bars" }, report.groups.map((g) => el("li", {},
            el("span", { class: "bar-label", text: groupName(report.group_by, g.group, staff) }),
            el("span", { class: "bar-track" }, bar(100 * (g[key] || 0) / top)),
            el("span", { class: "bar-value", text: shown(key, g[key]) }))))
            : el("p", { class: "muted", text: "No conversations in this period." }));
      }));
    } catch (e) {
      error.textContent = e.message;
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  groupBy.addEventListener("change", load);
  dialog.showModal();
  load();
  return dialog;
}
