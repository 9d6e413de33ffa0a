// What every part of the inbox shares: building DOM safely, the API client, formatting.

/**
 * An element with attributes and children. Strings become text nodes: nothing given here is
 * ever parsed as HTML, so a customer's "<script>" stays text.
 *   el("button", {type: "button", onclick: f, class: "x"}, "Label", el("span", {}, "more"))
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
}

/**
 * Re-render `container` with `render()` without losing the keyboard focus: an element marked
 * with data-key (or a row's data-id) that had the focus gets it back after the refresh.
 */
export function keepFocus(container, render) {
  const active = document.activeElement;
  const key = active && container.contains(active)
    ? active.dataset.key || (active.dataset.id && `id:${active.dataset.id}`) : null;
  render();
  if (!key) return;
  const again = [...container.querySelectorAll("[data-key], [data-id]")].find(
    (node) => (node.dataset.key || (node.dataset.id && `id:${node.dataset.id}`)) === key);
  if (again) again.focus({ preventScroll: true });
}

/** Replace the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Only web addresses may become a link or an image source. */
export function safeUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

// --- the API -------------------------------------------------------------------------------

/**
 * The signed-in session. Its cookie is HttpOnly (no script here can read it); the page keeps
 * only the session's CSRF token, in memory, and sends it with every change.
 */
export const session = { csrfToken: null };
const SAFE = new Set(["GET", "HEAD"]);

export class ApiError extends Error {
  constructor(status, message, data = {}) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

/** Called when the session stops working (401): the app goes back to the sign-in screen. */
let onUnauthorized = () => {};
export function whenUnauthorized(callback) { onUnauthorized = callback; }

export async function api(method, path, body) {
  const headers = {};
  if (!SAFE.has(method) && session.csrfToken) headers["X-CSRF-Token"] = session.csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "The inbox cannot reach the server. Check the connection.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    const message = typeof data.detail === "string" ? data.detail : `Request failed (${response.status})`;
    throw new ApiError(response.status, message, data);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// --- formatting ----------------------------------------------------------------------------

/** Times are shown in the shop's time zone when it is known, else the browser's. */
let timeZone;
export function setTimeZone(zone) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    timeZone = zone;
  } catch {
    timeZone = undefined;
  }
}
export function currentTimeZone() {
  return timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
}

function zoned(options, zone = timeZone) {
  return new Intl.DateTimeFormat(undefined, { ...options, timeZone: zone });
}

function dayKey(date, zone) {
  return zoned({ year: "numeric", month: "2-digit", day: "2-digit" }, zone).format(date);
}

/** "14:05" today, "Mon 14:05" this week, "3 Mar" before. */
export function shortTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const now = new Date();
  if (dayKey(date) === dayKey(now)) return zoned({ hour: "2-digit", minute: "2-digit" }).format(date);
  if (now - date < 6 * 86400000) {
    return zoned({ weekday: "short", hour: "2-digit", minute: "2-digit" }).format(date);
  }
  return zoned({ day: "numeric", month: "short" }).format(date);
}

export function fullTime(iso) {
  if (!iso) return "";
  return zoned({ dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

/** The time now where someone is (their own zone). */
export function localTimeIn(zone) {
  try {
    return zoned({ hour: "2-digit", minute: "2-digit", weekday: "short" }, zone).format(new Date());
  } catch {
    return null;
  }
}

export function money(amount, currency) {
  if (amount === null || amount === undefined) return "";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(amount));
  } catch {
    return `${amount} ${currency || ""}`.trim();
  }
}

export const TOPIC_NAMES = {
  checkout: "Checkout",
  order_editing: "Order editing",
  order_status: "Order status",
  pricing_discounts: "Pricing/Discounts",
  product_details: "Product details",
  product_interest: "Interest in a specific product",
  returns: "Returns/delivered orders",
  shipping: "Shipping",
  store_info: "Store info",
  wholesale: "Wholesale",
};

export function topicName(key) {
  return TOPIC_NAMES[key] || key.replaceAll("_", " ");
}

export function initials(name) {
  const parts = (name || "?").trim().split(/\s+/);
  return ((parts[0]?.[0] || "?") + (parts.length > 1 ? parts.at(-1)[0] : "")).toUpperCase();
}

/** Debounce: run `fn` once, `ms` after the last call. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
