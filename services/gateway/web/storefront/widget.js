/*
 * The storefront chat widget. A shop embeds it with one tag:
 *
 *   <script src="https://<gateway>/storefront/widget.js" data-shop="<shop id>" defer></script>
 *
 * It adds a chat button and panel (in a shadow root, so the shop's styles and the widget's do
 * not mix), lets the customer start a chat (name, email) and write, shows the shop's replies as
 * they arrive (Server-Sent Events, with a slow poll as a safety net), and tells the shop the
 * customer is here (page_view, a heartbeat while the page is visible, `left` when the page is
 * hidden for good) once they have a chat. Customers cannot send images here. A new chat tells
 * the shop the browser's time zone and language, so the merchant sees the customer's local time.
 * Outside the shop's chat hours it says when the shop is back (in the customer's own language
 * and time zone) and asks for an email address before the first message, so that the answer
 * can reach the customer; it reads the shop again whenever the panel opens.
 *
 * Everything the customer or the shop wrote is put on the page as text (textContent), never as
 * HTML; links and images only ever get http(s) addresses.
 *
 * window.InboxChat: { open(), cart(action, productId, quantity, cart), visitorId() }.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector("script[data-shop][src*='widget.js']");
  if (!script || window.InboxChat) return;
  var shopId = script.getAttribute("data-shop") || "";
  var origin = new URL(script.src, location.href).origin;
  var api = origin + "/storefront/api";
  var shopPath = api + "/shops/" + encodeURIComponent(shopId);
  var POLL_MS = 10000;

  // --- small helpers ------------------------------------------------------------------------

  function key(name) { return "inbox-chat:" + shopId + ":" + name; }
  var storage = {
    get: function (name) {
      try { return JSON.parse(localStorage.getItem(key(name)) || "null"); } catch (e) { return null; }
    },
    set: function (name, value) {
      try { localStorage.setItem(key(name), JSON.stringify(value)); } catch (e) { /* private mode */ }
    },
    remove: function (name) {
      try { localStorage.removeItem(key(name)); } catch (e) { /* private mode */ }
    },
  };

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  /** An element with attributes and children; strings become text nodes, never HTML. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  /** Only web addresses may become a link or an image. */
  function safeUrl(value) {
    try {
      var url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function request(method, url, body, token) {
    var headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(url, {
      method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(typeof data.detail === "string" ? data.detail : "Something went wrong.");
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  /** A calendar day's number in the browser's time zone (to count days between dates). */
  function dayNumber(date) {
    return Math.round(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()) / 86400000);
  }

  /** When the shop is back, for the customer: "tomorrow 09:00", "Monday 09:00", or a date. */
  function backAt(iso) {
    var at = new Date(iso);
    if (isNaN(at.getTime())) return "";
    var clock = { hour: "2-digit", minute: "2-digit" };
    try {
      var days = dayNumber(at) - dayNumber(new Date());
      if (days >= 0 && days <= 1 && Intl.RelativeTimeFormat) {
        var day = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(days, "day");
        return day + " " + new Intl.DateTimeFormat(undefined, clock).format(at);
      }
      var when = Object.assign({ weekday: "long" }, clock);
      if (days < 0 || days >= 7) Object.assign(when, { day: "numeric", month: "long" });
      return new Intl.DateTimeFormat(undefined, when).format(at);
    } catch (e) {
      return at.toLocaleString();
    }
  }

  function timeOf(iso) {
    try {
      return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    } catch (e) {
      return "";
    }
  }

  // --- state --------------------------------------------------------------------------------

  var session = storage.get("session");
  var visitorId = (session && session.visitor_id) || storage.get("visitor") || "v-" + randomId();
  storage.set("visitor", visitorId);
  var shop = { name: "the shop", heartbeat_seconds: 18, max_message_chars: 5000, available: true,
               next_available_at: null };
  var thread = { started: false, messages: [] };
  var pending = [];  // messages sent, not yet back from the server: {message_id, text, at}
  var presenceStarted = false;
  var events = null;
  var pollTimer = null;
  var shopTimer = null;

  // --- the panel ----------------------------------------------------------------------------

  var host = el("div", { id: "inbox-chat-widget" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("link", { rel: "stylesheet", href: origin + "/storefront/widget.css" }));

  var launcher = el("button", {
    type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "chat-panel",
    text: "Chat with us",
  });
  var title = el("h2", { id: "chat-title", text: "Chat" });
  var closeButton = el("button", {
    type: "button", class: "close", "aria-label": "Close chat", text: "\u00d7",
  });
  var status = el("p", { class: "status", role: "status", "aria-live": "polite" });
  // Outside chat hours: that nobody is there, and when the shop is back.
  var away = el("p", { class: "away", role: "status", "aria-live": "polite", hidden: true });
  var body = el("div", { class: "body" });
  var panel = el("section", {
    id: "chat-panel", class: "panel", role: "dialog", "aria-labelledby": "chat-title", hidden: true,
  }, el("header", null, title, closeButton), away, body, status);
  root.appendChild(launcher);
  root.appendChild(panel);

  function say(text, isError) {
    status.textContent = text || "";
    status.className = isError ? "status error" : "status";
  }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      // The page may have been open for hours: whether the shop is there now is read anew.
      readShop();
      var first = panel.querySelector("textarea, input");
      if (first) first.focus();
      scrollToEnd();
    } else {
      watchOpening();
      launcher.focus();
    }
  }

  launcher.addEventListener("click", function () { setOpen(panel.hidden); });
  closeButton.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") setOpen(false);
  });

  // The start form: who is writing, and the first message.
  var nameInput = el("input", { id: "chat-name", name: "name", autocomplete: "name", required: true,
                                maxlength: 100 });
  var emailInput = el("input", { id: "chat-email", name: "email", type: "email",
                                 autocomplete: "email", maxlength: 320,
                                 "aria-describedby": "chat-email-hint" });
  var firstMessage = el("textarea", { id: "chat-first", name: "message", rows: 3, required: true });
  var intro = el("p", { class: "intro" });
  var emailLabel = el("label", { for: "chat-email" });
  var emailHint = el("p", { id: "chat-email-hint", class: "hint" });
  var startForm = el("form", { class: "start", novalidate: true },
    intro,
    el("label", { for: "chat-name", text: "Your name" }), nameInput,
    emailLabel, emailInput, emailHint,
    el("label", { for: "chat-first", text: "Message" }), firstMessage,
    el("button", { type: "submit", class: "primary", text: "Start chat" }));

  // The conversation: the messages and the composer (text only: no attachments here).
  var log = el("ol", { class: "messages", role: "log", "aria-live": "polite",
                       "aria-label": "Messages" });
  var composerInput = el("textarea", { id: "chat-text", name: "text", rows: 2,
                                       "aria-describedby": "chat-text-hint" });
  var composer = el("form", { class: "composer" },
    el("label", { for: "chat-text", class: "visually-hidden", text: "Write a message" }),
    composerInput,
    el("button", { type: "submit", class: "primary", text: "Send" }),
    el("p", { id: "chat-text-hint", class: "hint",
              text: "Enter sends, Shift+Enter starts a new line." }));
  var conversation = el("div", { class: "conversation" }, log, composer);

  var EMAIL_NEEDED = "Please leave your email address: we're away now and will answer you there.";

  function isAway() { return shop.available === false; }

  /** The panel as the shop's hours say: in hours the email is optional; outside them there is
   * a notice of when the shop is back, and the email is required. */
  function showAvailability() {
    var awayNow = isAway();
    away.hidden = !awayNow;
    if (!awayNow) away.textContent = "";  // so that going away again is announced
    var when = awayNow && shop.next_available_at ? backAt(shop.next_available_at) : "";
    var notice = "We're away right now." + (when ? " Back " + when + "." : "");
    if (awayNow && away.textContent !== notice) {  // unchanged text is not announced again
      away.textContent = "";
      away.appendChild(document.createTextNode("We're away right now."));
      if (when) {
        away.appendChild(document.createTextNode(" Back "));
        away.appendChild(el("time", { datetime: shop.next_available_at, text: when }));
        away.appendChild(document.createTextNode("."));
      }
    }
    intro.textContent = awayNow
      ? "Hi! Leave us a message \u2014 we'll answer as soon as we're back."
      : "Hi! Ask us anything \u2014 we usually answer in a few minutes.";
    emailInput.required = awayNow;
    emailLabel.textContent = awayNow ? "Email" : "Email (optional)";
    emailHint.textContent = awayNow
      ? "We're away now. Leave your email and we'll answer you there."
      : "If you leave the store, we answer you by email.";
  }

  function useShop(info) {
    shop = info;
    title.textContent = "Chat with " + info.name;
    launcher.textContent = "Chat with " + info.name;
    showAvailability();
    watchOpening();
  }

  /** The shop read again (whether it is there now); what the panel shows follows. */
  function readShop() {
    return request("GET", shopPath).then(useShop).catch(function () { /* keep what we know */ });
  }

  /** While the panel is open and the shop away, read it again when it is back. */
  function watchOpening() {
    if (shopTimer) clearTimeout(shopTimer);
    shopTimer = null;
    if (panel.hidden || !isAway() || !shop.next_available_at) return;
    var wait = new Date(shop.next_available_at).getTime() - Date.now();
    // A second past the opening, spread a little; at most an hour ahead (clocks drift).
    wait = Math.min(Math.max(wait, 0) + 1000 + Math.random() * 4000, 3600000);
    shopTimer = setTimeout(readShop, wait);
  }
  showAvailability();

  function showBody() {
    body.textContent = "";
    body.appendChild(session ? conversation : startForm);
  }

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function renderMessage(message, isPending) {
    var mine = message.author === "customer";
    var item = el("li", {
      class: "message " + (mine ? "mine" : "theirs") + (isPending ? " pending" : ""),
      "data-id": message.message_id,
    });
    item.appendChild(el("span", { class: "visually-hidden", text: mine ? "You:" : shop.name + ":" }));
    if (message.text) item.appendChild(el("p", { class: "text", text: message.text }));
    if (message.product) {
      var productUrl = safeUrl(message.product.url);
      var price = message.product.price ? message.product.price + " " + (message.product.currency || "") : "";
      var card = el("div", { class: "product" },
        el("strong", { text: message.product.title || "Product" }),
        price ? el("span", { class: "price", text: price }) : null);
      if (productUrl) card.appendChild(el("a", { href: productUrl, target: "_blank", rel: "noopener noreferrer", text: "View product" }));
      item.appendChild(card);
    }
    if (message.discount) {
      var discountUrl = safeUrl(message.discount.url);
      var label = "Apply discount " + (message.discount.code || "");
      item.appendChild(discountUrl
        ? el("a", { class: "discount", href: discountUrl, target: "_blank", rel: "noopener noreferrer", text: label })
        : el("p", { class: "discount", text: label }));
    }
    var imageUrl = message.image_url && safeUrl(message.image_url);
    if (imageUrl) {
      item.appendChild(el("img", { src: imageUrl, alt: "Image from " + shop.name, loading: "lazy" }));
    }
    var meta = isPending ? "Sending\u2026" : timeOf(message.at);
    if (message.via === "email") meta += " \u00b7 sent by email";
    item.appendChild(el("span", { class: "meta", text: meta }));
    return item;
  }

  function render() {
    var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    var known = {};
    log.textContent = "";
    thread.messages.forEach(function (message) {
      known[message.message_id] = true;
      log.appendChild(renderMessage(message, false));
    });
    pending = pending.filter(function (message) { return !known[message.message_id]; });
    pending.forEach(function (message) { log.appendChild(renderMessage(message, true)); });
    if (!thread.messages.length && !pending.length) {
      log.appendChild(el("li", { class: "empty", text: "Write us a message below." }));
    }
    if (atEnd || pending.length) scrollToEnd();
  }

  /** Where and in which language the customer is, as their browser says (or nothing). */
  function whereabouts() {
    var found = {};
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) found.timezone = zone;
    } catch (e) { /* no Intl: nothing to tell */ }
    if (navigator.language) found.locale = navigator.language;
    return found;
  }

  // --- talking to the shop ------------------------------------------------------------------

  function saveSession(value) {
    session = value;
    visitorId = value.visitor_id;
    storage.set("session", value);
    storage.set("visitor", visitorId);
  }

  function forgetSession() {
    session = null;
    storage.remove("session");
    stopEvents();
    showBody();
  }

  function refresh() {
    if (!session) return Promise.resolve();
    return request("GET", api + "/chat", undefined, session.token).then(function (data) {
      thread = data;
      render();
      if (data.started) startPresence();
    }).catch(function (error) {
      if (error.status === 401) forgetSession();
    });
  }

  function send(text) {
    var clean = text.trim();
    if (!clean) return Promise.resolve(false);
    if (clean.length > shop.max_message_chars) {
      say("That message is too long.", true);
      return Promise.resolve(false);
    }
    var local = { message_id: "pending-" + randomId(), author: "customer", text: clean,
                  at: new Date().toISOString() };
    pending.push(local);
    render();
    return request("POST", api + "/chat/messages", { text: clean }, session.token)
      .then(function (posted) {
        local.message_id = posted.message_id;
        say("");
        render();
        return true;
      }).catch(function (error) {
        pending = pending.filter(function (message) { return message !== local; });
        render();
        say("Not sent: " + error.message, true);
        if (error.status === 401) forgetSession();
        return false;
      });
  }

  startForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var name = nameInput.value.trim();
    var email = emailInput.value.trim();
    if (!name) { say("Please tell us your name.", true); nameInput.focus(); return; }
    if (!email && isAway()) { say(EMAIL_NEEDED, true); emailInput.focus(); return; }
    if (email && !emailInput.checkValidity()) {
      say("That email address does not look right.", true); emailInput.focus(); return;
    }
    if (!firstMessage.value.trim()) {
      say("Please write your message.", true); firstMessage.focus(); return;
    }
    var payload = { visitor_id: visitorId, name: name };
    if (email) payload.email = email;
    var where = whereabouts();
    var withWhere = Object.assign({}, payload, where);
    request("POST", shopPath + "/chats", withWhere).catch(function (error) {
      // A time zone or language the shop does not know never stands in the way of a chat:
      // once more without what was refused (the answer names the field).
      var refused = Object.keys(where).filter(function (field) {
        return error.message.indexOf(field + ":") !== -1;
      });
      if (error.status !== 422 || !refused.length) throw error;
      refused.forEach(function (field) { delete withWhere[field]; });
      return request("POST", shopPath + "/chats", withWhere);
    }).then(function (value) {
      saveSession(value);
      showBody();
      connectEvents();
      return send(firstMessage.value);
    }).then(function (sent) {
      if (sent) firstMessage.value = "";
      composerInput.focus();
    }).catch(function (error) {
      if (error.status === 422 && !payload.email) {
        // The shop went away since the panel was shown: say so, and ask for the email.
        return readShop().then(function () {
          if (!isAway()) { say(error.message, true); return; }
          say(EMAIL_NEEDED, true);
          emailInput.focus();
        });
      }
      say(error.message, true);
    });
  });

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = composerInput.value;
    if (!text.trim()) return;
    composerInput.value = "";
    send(text).then(function (sent) {
      if (!sent && !composerInput.value) composerInput.value = text;  // keep what was written
    });
  });
  composerInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  // --- live updates -------------------------------------------------------------------------

  function stopEvents() {
    if (events) events.close();
    events = null;
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  var retryMs = 1000;
  function connectEvents() {
    if (!session || events) return;
    if (!pollTimer) pollTimer = setInterval(refresh, POLL_MS);
    request("POST", api + "/chat/events/ticket", undefined, session.token).then(function (data) {
      if (!session || events) return;
      events = new EventSource(api + "/chat/events?ticket=" + encodeURIComponent(data.ticket));
      events.addEventListener("ready", function () { retryMs = 1000; refresh(); });
      events.addEventListener("changed", function () { refresh(); });
      events.addEventListener("error", function () {
        // A dropped stream reconnects by itself; a refused one (expired ticket) needs a new one.
        if (events && events.readyState === EventSource.CLOSED) {
          events = null;
          setTimeout(connectEvents, retryMs);
          retryMs = Math.min(retryMs * 2, 30000);
        }
      });
    }).catch(function (error) {
      if (error.status === 401) { forgetSession(); return; }
      setTimeout(connectEvents, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }

  // --- presence: only once the customer has a conversation ------------------------------------

  function signal(type) {
    var url = shopPath + "/activity";
    var payload = JSON.stringify({ visitor_id: visitorId, type: type });
    if (type === "left" && navigator.sendBeacon) {
      // text/plain: no preflight, so the signal leaves even as the page goes away.
      navigator.sendBeacon(url, new Blob([payload], { type: "text/plain" }));
      return;
    }
    fetch(url, { method: "POST", body: payload, keepalive: true,
                 headers: { "Content-Type": "text/plain" } }).catch(function () {});
  }

  function startPresence() {
    if (presenceStarted) return;
    presenceStarted = true;
    signal("page_view");
    setInterval(function () {
      if (document.visibilityState === "visible") signal("heartbeat");
    }, Math.max(1, shop.heartbeat_seconds) * 1000);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") signal("heartbeat");
    });
    window.addEventListener("pagehide", function () { signal("left"); });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) signal("page_view");  // back from the back/forward cache
    });
  }

  // --- the cart (called by the shop's pages) ------------------------------------------------

  function cart(action, productId, quantity, contents) {
    return request("POST", shopPath + "/cart", {
      visitor_id: visitorId, action: action, product_id: productId, quantity: quantity || 1,
      cart: contents,
    });
  }

  // --- start --------------------------------------------------------------------------------

  function resumeFromLink() {
    var match = /(?:^#|&)continue=([0-9a-fA-F-]{36})\.([A-Za-z0-9_.-]{8,128})/.exec(location.hash);
    if (!match) return Promise.resolve(false);
    history.replaceState(null, "", location.pathname + location.search);
    return request("POST", api + "/chats/resume", {
      shop_id: shopId, conversation_id: match[1], sig: match[2],
    }).then(function (value) {
      saveSession(value);
      return true;
    }).catch(function (error) {
      say("We could not open that conversation: " + error.message, true);
      return true;
    });
  }

  function start() {
    document.body.appendChild(host);
    request("GET", shopPath).then(function (info) {
      useShop(info);
      return resumeFromLink();
    }).then(function (fromLink) {
      showBody();
      if (session) { connectEvents(); refresh(); }
      if (fromLink) setOpen(true);
      document.dispatchEvent(new CustomEvent("inbox-chat:ready"));
    }).catch(function (error) {
      host.remove();
      if (window.console) console.warn("chat widget: " + error.message);
    });
  }

  window.InboxChat = {
    open: function () { setOpen(true); },
    cart: cart,
    visitorId: function () { return visitorId; },
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
