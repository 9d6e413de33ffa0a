// The merchant inbox: sign in, the conversation list, one conversation, live updates and
// desktop notifications. Plain ES modules over the merchant API (/api/v1); no build step.

import { ConversationView, channelName, customerName, onlineBadge } from "./conversation.js";
import { manageSavedReplies } from "./dialogs.js";
import { showReports } from "./reports.js";
import { showChatSettings } from "./settings.js";
import {
  debounce, del, el, fill, get, keepFocus, post, put, query, session, setTimeZone, shortTime,
  topicName, whenUnauthorized,
} from "./lib.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
/** Effects of a command or a delivery reach the database a moment after the event: look twice. */
const SETTLE_MS = 1200;

const state = {
  me: null,
  status: "open",
  search: "",
  items: [],
  nextOffset: null,
  selected: null,
};

let view;
let events = null;
let liveRetry = 1000;

// --- small things ------------------------------------------------------------------------

let toastTimer;
function toast(text, isError = false) {
  const node = $("toast");
  node.textContent = text;
  node.className = isError ? "toast error visible" : "toast visible";
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.className = "toast"; }, isError ? 8000 : 3000);
}

function liveState(text) { $("live-state").textContent = text; }

// --- signing in and out --------------------------------------------------------------------

/** Opens the inbox for the signed-in session (`signed`: the session's answer). */
async function enter(signed) {
  session.csrfToken = signed.csrf_token;
  const me = await get("/me");
  state.me = me;
  setTimeZone(me.shop?.timezone);
  $("shop-name").textContent = me.shop?.name || "Inbox";
  $("me-name").textContent = me.name;
  document.title = `Inbox \u2014 ${me.shop?.name || me.shop_id}`;
  $("sign-in").hidden = true;
  $("app").hidden = false;
  view = new ConversationView($("view"), $("profile"), {
    me,
    toast,
    changed: () => refreshSoon(true),
    back: () => { location.hash = "#/"; },
  });
  updateNotificationButton();
  await showAvailability(me);
  connectLive();
  await route();
}

/** Staff who can be assigned say whether automatic assignment may give them conversations. */
async function showAvailability(me) {
  $("availability").hidden = !me.can_be_assigned;
  if (me.can_be_assigned) $("available").checked = (await get("/me/availability")).available;
}

$("available").addEventListener("change", async () => {
  const available = $("available").checked;
  try {
    await put("/me/availability", { available });
    toast(available ? "You are available: new conversations can come to you."
      : "You are away: no new conversations come to you.");
  } catch (e) {
    $("available").checked = !available;
    toast(e.message, true);
  }
});

function showSignIn(message = "", note = "") {
  session.csrfToken = null;
  if (events) events.close();
  events = null;
  state.me = null;
  $("app").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("sign-in-note").textContent = note;
  $("password").value = "";
  ($("email").value ? $("password") : $("email")).focus();
}

function chooseShop(shops) {
  fill($("shop"), shops.map((s) => el("option", { value: s.shop_id }, s.name)));
  $("shop-choice").hidden = false;
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || !password) {
    $("sign-in-error").textContent = "Enter your email address and password.";
    return;
  }
  const body = { email, password };
  if (!$("shop-choice").hidden) body.shop_id = $("shop").value;
  try {
    await enter(await post("/session", body));
  } catch (e) {
    if (e.status === 409 && e.data.shops) {
      chooseShop(e.data.shops);
      showSignIn("", "This address signs in to several shops: choose one.");
    } else {
      showSignIn(e.status === 401 ? "Wrong email address or password." : e.message);
    }
  }
});

$("send-link").addEventListener("click", async () => {
  const email = $("email").value.trim();
  if (!email) {
    showSignIn("Enter your email address first.");
    return;
  }
  try {
    const sent = await post("/session/link", { email });
    showSignIn("", sent.detail);
  } catch (e) {
    showSignIn(e.message);
  }
});

async function signOut() {
  try {
    await del("/session");
  } finally {
    showSignIn("", "You are signed out.");
  }
}

$("sign-out").addEventListener("click", () => signOut());
whenUnauthorized(() => { if (state.me) showSignIn("Your session ended. Sign in again."); });

// --- the list ------------------------------------------------------------------------------

function filters() {
  return {
    status: state.status,
    assignee: $("filter-mine").checked ? "me" : undefined,
    unassigned: $("filter-unassigned").checked ? "true" : undefined,
    unread: $("filter-unread").checked ? "true" : undefined,
    q: state.search || undefined,
  };
}

let listGeneration = 0;
async function loadList({ append = false } = {}) {
  const mine = ++listGeneration;
  const offset = append ? state.items.length : 0;
  const limit = append ? PAGE : Math.max(PAGE, state.items.length);
  const list = $("conversation-list");
  list.setAttribute("aria-busy", "true");
  try {
    const page = await get(`/conversations${query({ ...filters(), limit, offset })}`);
    if (mine !== listGeneration) return;
    state.items = append ? state.items.concat(page.items) : page.items;
    state.nextOffset = page.next_offset;
    renderList();
  } catch (e) {
    if (mine === listGeneration) toast(e.message, true);
  } finally {
    if (mine === listGeneration) list.setAttribute("aria-busy", "false");
  }
}

function renderRow(row) {
  const selected = row.conversation_id === state.selected;
  const name = customerName(row.customer);
  return el("li", { class: "row-item" },
    el("a", {
      href: `#/c/${row.conversation_id}`,
      class: `row${row.unread ? " unread" : ""}${selected ? " selected" : ""}`,
      "aria-current": selected ? "true" : null,
      dataset: { id: row.conversation_id },
    },
      el("span", { class: "row-top" },
        row.unread ? el("span", { class: "unread-dot", title: "Unread" }, el("span", { class: "visually-hidden", text: "Unread: " })) : null,
        el("span", { class: "row-name", text: name }),
        onlineBadge(row.online),
        el("time", { class: "row-time", datetime: row.last_message_at || "", text: shortTime(row.last_message_at) })),
      el("span", { class: "row-preview", text: row.last_message_preview || "" }),
      el("span", { class: "row-bottom" },
        row.topics.slice(0, 2).map((t) => el("span", { class: "topic", text: topicName(t) })),
        el("span", { class: "row-assignee", text: row.assignee ? `\u2192 ${row.assignee.name || row.assignee.staff_id}` : "Unassigned" }),
        el("span", { class: "row-channel", text: channelName(row.channel) }),
        row.cart ? el("span", { class: "row-cart", text: "Cart" }) : null)));
}

function renderList() {
  const list = $("conversation-list");
  keepFocus(list, () => fill(list, state.items.length
    ? state.items.map(renderRow)
    : el("li", { class: "empty", text: state.status === "open" ? "No open conversations here." : "No closed conversations here." })));
  $("more").hidden = state.nextOffset === null;
}

function selectTab(status) {
  state.status = status;
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const on = tab.dataset.status === status;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    if (on) $("conversation-list").setAttribute("aria-labelledby", tab.id);
  }
  state.items = [];
  loadList();
}

for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => selectTab(tab.dataset.status));
  tab.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const tabs = [...document.querySelectorAll("[role=tab]")];
    const next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    selectTab(next.dataset.status);
  });
}
$("search").addEventListener("input", debounce(() => {
  state.search = $("search").value.trim();
  loadList();
}, 250));
$("filter-mine").addEventListener("change", () => {
  if ($("filter-mine").checked) $("filter-unassigned").checked = false;
  loadList();
});
$("filter-unassigned").addEventListener("change", () => {
  if ($("filter-unassigned").checked) $("filter-mine").checked = false;
  loadList();
});
$("filter-unread").addEventListener("change", () => loadList());
$("more").addEventListener("click", () => loadList({ append: true }));
$("saved-replies-button").addEventListener("click", () => manageSavedReplies());
// Everyone sees the shop's chat settings; only staff with the messaging permission (the same
// that shows subjects) change them.
$("chat-settings-button").addEventListener("click", () => showChatSettings({
  canChange: Boolean(state.me?.can_see_subjects), toast,
}));
$("reports-button").addEventListener("click", async () => {
  let staff = new Map();
  try {
    staff = new Map((await get("/staff/assignable")).items.map((s) => [s.staff_id, s.name]));
  } catch { /* the report names staff by id then */ }
  showReports(staff);
});

// Keyboard: j / k (or arrows in the list) move between conversations.
$("conversation-list").addEventListener("keydown", (event) => {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const links = [...$("conversation-list").querySelectorAll("a.row")];
  const index = links.indexOf(document.activeElement);
  const next = links[index + (event.key === "ArrowDown" ? 1 : -1)];
  if (next) {
    event.preventDefault();
    next.focus();
  }
});

// --- routing: #/c/<conversation id> --------------------------------------------------------

async function route({ focusView = false } = {}) {
  const match = /^#\/c\/([0-9a-f-]{36})$/.exec(location.hash);
  const id = match ? match[1] : null;
  state.selected = id;
  document.body.classList.toggle("has-selection", Boolean(id));
  renderList();
  if (id) {
    await view.show(id);
    // The keyboard lands in the conversation as soon as it shows, not after the list reloads:
    // by then the merchant may have moved on to one of its buttons.
    if (focusView && id === state.selected) $("view").focus({ preventScroll: true });
  } else {
    view.clear();
  }
  await loadList();
}
window.addEventListener("hashchange", () => {
  if (state.me) route({ focusView: true });
});

// --- live updates --------------------------------------------------------------------------

let refreshTimers = [];
/** Refresh the list (and the open conversation) now-ish and once more after things settle. */
function refreshSoon(withView) {
  for (const timer of refreshTimers) clearTimeout(timer);
  refreshTimers = [150, SETTLE_MS].map((ms) => setTimeout(() => {
    loadList();
    if (withView) view.refresh();
  }, ms));
}

function onTimeline(item) {
  const open = item.conversation_id === state.selected;
  refreshSoon(open);
  if (item.kind === "customer_message") notify(item);
}

async function connectLive() {
  if (events || !state.me) return;
  try {
    const { ticket } = await post("/events/ticket");
    if (!state.me || events) return;
    events = new EventSource(`/api/v1/events?ticket=${encodeURIComponent(ticket)}`);
  } catch (e) {
    if (e.status === 401) return;
    setTimeout(connectLive, liveRetry);
    liveRetry = Math.min(liveRetry * 2, 30000);
    return;
  }
  const on = (name, handler) => events.addEventListener(name, (event) => handler(JSON.parse(event.data || "{}")));
  on("ready", () => {
    liveRetry = 1000;
    liveState("Live");
    refreshSoon(true);
  });
  on("resync", () => refreshSoon(true));
  on("timeline", onTimeline);
  on("delivery", (d) => refreshSoon(d.conversation_id === state.selected));
  on("presence", () => refreshSoon(true));
  on("topic", (d) => refreshSoon(d.conversation_id === state.selected));
  events.addEventListener("error", () => {
    liveState("Reconnecting\u2026");
    if (events && events.readyState === EventSource.CLOSED) {
      // Refused (e.g. the ticket expired): ask for a new one.
      events = null;
      setTimeout(connectLive, liveRetry);
      liveRetry = Math.min(liveRetry * 2, 30000);
    }
  });
}

// A slow poll as a safety net under the live updates.
setInterval(() => {
  if (state.me && document.visibilityState === "visible") refreshSoon(true);
}, 30000);
// Online can lapse by time alone (a customer who wrote but never sent a storefront signal), with
// no event to say so: the open conversation is looked at again every few seconds, so where a
// reply goes is never stale when the merchant writes it.
setInterval(() => {
  if (state.me && state.selected && document.visibilityState === "visible") view.refresh();
}, 5000);

// --- desktop notifications -----------------------------------------------------------------

function updateNotificationButton() {
  const button = $("notifications-button");
  button.hidden = !("Notification" in window) || Notification.permission !== "default";
}

$("notifications-button").addEventListener("click", async () => {
  await Notification.requestPermission();
  updateNotificationButton();
});

/** A new customer message in a conversation assigned to me or to nobody. */
async function notify(item) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (item.conversation_id === state.selected && document.hasFocus()) return;  // already looking
  let row;
  try {
    row = await get(`/conversations/${item.conversation_id}`);
  } catch {
    return;
  }
  if (row.assignee && row.assignee.staff_id !== state.me.staff_id) return;
  const notification = new Notification(`New message from ${customerName(row.customer)}`, {
    body: item.text || "",
    tag: `conversation-${item.conversation_id}`,
  });
  notification.onclick = () => {
    window.focus();
    location.hash = `#/c/${item.conversation_id}`;
    notification.close();
  };
}

// --- start ---------------------------------------------------------------------------------

/** An emailed link (`?sign_in=…`) is redeemed by a POST, then taken out of the address bar. */
async function start() {
  const link = new URLSearchParams(location.search).get("sign_in");
  if (link) {
    history.replaceState(null, "", location.pathname + location.hash);
    try {
      await enter(await post("/session/link/redeem", { token: link }));
    } catch (e) {
      showSignIn(e.message);
    }
    return;
  }
  let signed;
  try {
    signed = await get("/session");
  } catch (e) {
    showSignIn(e.status === 401 ? "" : e.message);
    return;
  }
  await enter(signed).catch((e) => showSignIn(e.message));
}

start();
