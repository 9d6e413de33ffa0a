// One conversation: its header and actions, the subject, the cart, the timeline, where a reply
// goes, the composer, and the customer profile beside it.
//
// The view is refreshed often (live updates): what the merchant is typing (the reply, the
// subject, a note) lives in elements that are kept across refreshes, never rebuilt.

import { manageSavedReplies, picker, prompt } from "./dialogs.js";
import {
  el, fill, fullTime, get, initials, keepFocus, localTimeIn, money, post, put, query, safeUrl,
  shortTime, topicName,
} from "./lib.js";

const CHANNEL_NAMES = {
  online_store_chat: "Online Store chat",
  messenger: "Messenger",
  email: "Email",
  instagram: "Instagram",
  shop_app: "Shop app",
};
export const channelName = (key) => CHANNEL_NAMES[key] || key;

export function customerName(customer) {
  if (customer?.redacted) return "Redacted customer";
  return customer?.name || customer?.email || "Customer";
}

export function onlineBadge(online) {
  return online
    ? el("span", { class: "online", title: "In the store now" }, el("span", { class: "dot", "aria-hidden": "true" }), "Online")
    : null;
}

/** A language tag's name in the inbox's language ("de-CH": "German (Switzerland)"). */
export function languageName(tag) {
  try {
    const names = new Intl.DisplayNames([document.documentElement.lang || "en"],
                                        { type: "language", languageDisplay: "standard" });
    return names.of(tag) || tag;
  } catch {
    return tag;
  }
}

/** What kind of automated message this is: "Automated · Instant answer: Shipping". */
export function automationLabel(data) {
  const kind = data.automation || data.kind;
  if (kind === "away_message") return "Automated \u00b7 Away message";
  if (kind === "instant_answer") {
    const topic = data.topic_name || (data.topic && topicName(data.topic));
    return topic ? `Automated \u00b7 Instant answer: ${topic}` : "Automated \u00b7 Instant answer";
  }
  if (kind === "order_update" || data.order_update) return "Automated \u00b7 Order update";
  return "Automated";
}

export class ConversationView {
  /**
   * @param {HTMLElement} pane where the conversation goes
   * @param {HTMLElement} aside where the customer profile goes
   * @param {object} ctx { me, toast(text), changed() , back() }
   */
  constructor(pane, aside, ctx) {
    this.pane = pane;
    this.aside = aside;
    this.ctx = ctx;
    this.id = null;
    this.detail = null;
    this.attachment = null;  // {type: product|discount|image, value, label}
    // Refreshes overlap under load and may answer out of order: an answer older than the one
    // shown is dropped (it would take back a note or a cart change just shown).
    this.asked = 0;
    this.shown = 0;
    this.build();
  }

  // --- the parts kept for the whole life of the view ---------------------------------------

  build() {
    this.header = el("header", { class: "view-header" });
    this.subjectBox = el("div", { class: "subject-box" });
    this.cartBox = el("div", { class: "cart-box" });
    this.timeline = el("ol", { class: "timeline", "aria-label": "Timeline", tabindex: "0" });
    this.destination = el("p", { class: "destination", id: "reply-destination" });
    // The customer's local time, kept ticking between refreshes (a minute is enough to see).
    this.localTime = el("time", { class: "local-time" });
    setInterval(() => this.tickLocalTime(), 15_000);

    // The subject (staff with the messaging permission only).
    this.subjectInput = el("input", { id: "subject", maxlength: 255, autocomplete: "off",
                                      placeholder: "Add a subject to find this again" });
    this.subjectForm = el("form", { class: "subject" },
      el("label", { for: "subject", text: "Subject" }), this.subjectInput,
      el("button", { type: "submit", class: "quiet", text: "Save subject" }));
    this.subjectForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.act(() => put(`/conversations/${this.id}/subject`, { subject: this.subjectInput.value.trim() }),
               "Subject saved.");
    });

    // The composer.
    this.text = el("textarea", { id: "reply-text", rows: 3, maxlength: 20000,
                                 "aria-describedby": "reply-destination reply-hint" });
    this.chip = el("div", { class: "attachment", hidden: true });
    this.composerError = el("p", { class: "error", role: "alert" });
    const tool = (label, onclick) => el("button", { type: "button", class: "tool", text: label, onclick });
    this.sendButton = el("button", { type: "submit", class: "primary", text: "Send" });
    this.composer = el("form", { class: "composer", "aria-label": "Reply" },
      el("label", { for: "reply-text", class: "visually-hidden", text: "Reply" }),
      this.text, this.chip,
      el("div", { class: "composer-tools" },
        el("div", { class: "tools", role: "group", "aria-label": "Add to the reply" },
          tool("Product", () => this.pickProduct()),
          tool("Discount", () => this.pickDiscount()),
          tool("Image", () => this.pickImage()),
          tool("Saved reply", () => this.pickSavedReply())),
        this.sendButton),
      el("p", { id: "reply-hint", class: "hint", text: "Ctrl+Enter (\u2318+Enter) sends." }),
      this.composerError);
    this.composer.addEventListener("submit", (event) => { event.preventDefault(); this.send(); });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.send();
      }
    });

    // Notes on the customer.
    this.noteText = el("textarea", { id: "note-text", rows: 2, maxlength: 5000 });
    this.noteForm = el("form", { class: "note-form stack" },
      el("label", { for: "note-text", text: "Add a note (staff only)" }), this.noteText,
      el("button", { type: "submit", class: "quiet", text: "Add note" }));
    this.noteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.noteText.value.trim();
      if (!text) return;
      this.act(() => post(`/conversations/${this.id}/notes`, { text }), "Note added.")
        .then((ok) => { if (ok) this.noteText.value = ""; });
    });
    // What is re-rendered with each update; the note form stays put, so a note being typed
    // keeps its focus when a live update arrives.
    this.profileInfo = el("div");
    this.profileBody = el("div", { class: "profile-body" }, this.profileInfo, this.noteForm);
  }

  // --- showing a conversation --------------------------------------------------------------

  async show(id) {
    if (id !== this.id) {
      this.id = id;
      this.detail = null;
      this.text.value = "";
      this.noteText.value = "";
      this.subjectInput.value = "";
      this.setAttachment(null);
      this.composerError.textContent = "";
      fill(this.pane, el("p", { class: "placeholder", text: "Loading\u2026" }));
      fill(this.aside);
    }
    await this.refresh();
  }

  clear() {
    this.id = null;
    this.detail = null;
    fill(this.pane, el("p", { class: "placeholder", text: "Choose a conversation." }));
    fill(this.aside);
  }

  async refresh() {
    const id = this.id;
    if (!id) return;
    const asked = ++this.asked;
    let detail;
    try {
      detail = await get(`/conversations/${id}`);
    } catch (e) {
      if (id !== this.id) return;
      fill(this.pane, el("p", { class: "placeholder error", text: e.message }));
      return;
    }
    if (id !== this.id) return;  // another conversation was chosen meanwhile
    if (asked < this.shown) return;  // a newer answer is on the page already
    this.shown = asked;
    const first = this.detail === null;
    this.detail = detail;
    this.render(first);
  }

  render(first) {
    const d = this.detail;
    const me = this.ctx.me;
    const atEnd = this.timeline.scrollHeight - this.timeline.scrollTop - this.timeline.clientHeight < 60;

    keepFocus(this.header, () => fill(this.header,
      el("button", { type: "button", class: "quiet back", "data-key": "back", text: "\u2190 Conversations",
                     onclick: () => this.ctx.back() }),
      el("div", { class: "who" },
        el("h2", { id: "view-title", text: customerName(d.customer) }),
        el("div", { class: "who-meta" },
          onlineBadge(d.online),
          el("span", { class: "channel", text: channelName(d.channel) }),
          el("span", { class: `status-badge ${d.status}`, text: d.status === "open" ? "Open" : "Closed" }),
          d.unread ? el("span", { class: "unread-badge", text: "Unread" }) : null,
          d.topics.map((t) => el("span", { class: "topic", text: topicName(t) })))),
      el("div", { class: "actions", role: "toolbar", "aria-label": "Conversation actions" },
        el("span", { class: "assignee-line", text: d.assignee ? `Assigned to ${d.assignee.name || d.assignee.staff_id}` : "Unassigned" }),
        el("button", { type: "button", class: "quiet", "data-key": "assign", text: d.assignee ? "Reassign" : "Assign",
                       onclick: () => this.pickAssignee() }),
        d.assignee ? el("button", { type: "button", class: "quiet", "data-key": "unassign", text: "Unassign",
                                    onclick: () => this.act(() => post(`/conversations/${this.id}/unassign`), "Unassigned.") }) : null,
        el("button", { type: "button", class: "quiet", "data-key": "status", text: d.status === "open" ? "Close" : "Reopen",
                       onclick: () => this.setStatus(d.status === "open" ? "closed" : "open") }),
        el("button", { type: "button", class: "quiet", "data-key": "unread", text: "Mark unread",
                       onclick: () => this.act(() => post(`/conversations/${this.id}/mark-unread`), "Marked unread.") }),
        d.blocked
          ? el("button", { type: "button", class: "quiet", "data-key": "block", text: "Unblock",
                           onclick: () => this.act(() => post(`/conversations/${this.id}/unblock`), "Unblocked.") })
          : el("button", { type: "button", class: "quiet danger", "data-key": "block", text: "Block",
                           onclick: () => this.askToBlock() })),
      d.blocked ? el("p", { class: "blocked-banner", role: "note",
                            text: `Blocked: ${d.blocked_reason || "no reason given"}. Their messages on this channel are refused.` }) : null));

    // The subject: only when the API gives it (staff with the messaging permission).
    if (me.can_see_subjects) {
      if (document.activeElement !== this.subjectInput) this.subjectInput.value = d.subject || "";
      // Attached once: moving it would take the focus from a subject being typed.
      if (!this.subjectBox.contains(this.subjectForm)) fill(this.subjectBox, this.subjectForm);
    } else {
      fill(this.subjectBox);
    }

    const off = d.cart?.discount;
    const minus = "\u2212\u2060";  // a minus sign that never wraps away from its amount
    fill(this.cartBox, d.cart ? el("div", { class: "cart", "aria-label": "Cart" },
      el("strong", { text: `Cart ${money(d.cart.subtotal, d.cart.currency)}` }),
      off ? el("span", { class: "cart-discount",
                         text: ` \u00b7 discount ${off.code} (${minus}${money(off.amount, d.cart.currency)})` }) : null,
      el("ul", {}, d.cart.items.map((i) => el("li", { text: `${i.quantity} \u00d7 ${i.title}` })))) : null);

    fill(this.timeline, d.timeline.length
      ? d.timeline.map((item) => this.renderItem(item))
      : el("li", { class: "muted", text: "Nothing yet." }));

    const go = d.replies_go_to;
    let where;
    if (go.channel === null) where = `Replies wait for the customer: ${go.waiting_reason || "they left the store"}`;
    else if (go.email) where = `The customer left the store: replies go by email to ${go.email}`;
    else where = `Replies go to ${channelName(go.channel)}`;
    this.destination.textContent = where;
    this.destination.className = `destination ${go.channel === null ? "held" : go.email ? "email" : "live"}`;

    if (first) {
      fill(this.pane, this.header, this.subjectBox, this.cartBox, this.timeline, this.destination, this.composer);
      fill(this.aside, this.profileBody);
    }
    this.renderProfile();
    if (first || atEnd) this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  renderItem(item) {
    const who = item.staff_name || item.staff_id || "Staff";
    const time = el("time", { datetime: item.at, title: fullTime(item.at), text: shortTime(item.at) });
    const d = item.data || {};
    switch (item.kind) {
      case "customer_message": {
        const attachments = (d.attachments || []).map((a) => {
          const url = safeUrl(a.url);
          return url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: `Attachment (${a.type})` }) : null;
        });
        return el("li", { class: "item customer", "data-kind": item.kind },
          el("span", { class: "visually-hidden", text: "Customer:" }),
          el("p", { class: "text", text: item.text || "" }), attachments,
          el("span", { class: "meta" }, time));
      }
      case "merchant_reply":
        if (item.author === "system") return this.renderAutomated(item, time);
        return el("li", { class: "item staff", "data-kind": item.kind, "data-message": item.message_id },
          el("span", { class: "visually-hidden", text: `${who}:` }),
          item.text ? el("p", { class: "text", text: item.text }) : null,
          this.renderContent(d),
          el("span", { class: "meta" }, `${who} \u00b7 `, time, this.deliveryNote(item)));
      case "cart_event":
        return el("li", { class: "item event cart-event", "data-kind": item.kind },
          `Customer ${item.text || "changed the cart"} \u00b7 `, time);
      case "delivery_failed":
        return el("li", { class: "item event failure", "data-kind": item.kind, role: "note" },
          `Not delivered on ${channelName(d.channel)}: ${item.text || "unknown reason"} \u00b7 `, time);
      case "attachment_refused":
        return el("li", { class: "item event", "data-kind": item.kind },
          `${item.text || "An image was refused."} \u00b7 `, time);
      default:
        return el("li", { class: "item event", "data-kind": item.kind }, `${this.eventText(item, who)} \u00b7 `, time);
    }
  }

  /** A message the shop sent by itself (away message, instant answer, order update): never
   * shown as a staff member's, and marked as automated. */
  renderAutomated(item, time) {
    const d = item.data || {};
    const label = automationLabel(d);
    return el("li", { class: "item staff automated", "data-kind": item.kind, "data-message": item.message_id,
                      "data-automation": d.automation || d.kind || "automated" },
      el("span", { class: "automated-label", text: label }),
      item.text ? el("p", { class: "text", text: item.text }) : null,
      this.renderContent(d),
      el("span", { class: "meta" }, time, this.deliveryNote(item)));
  }

  eventText(item, who) {
    const d = item.data || {};
    switch (item.kind) {
      case "status_changed": return `${who} ${d.status === "closed" ? "closed" : "reopened"} the conversation`;
      case "assigned":
        if (d.automatic) return `Assigned automatically to ${d.assignee_name || d.assignee_staff_id}`;
        return `${who} assigned this to ${d.assignee_name || d.assignee_staff_id}`;
      case "unassigned": return `${who} unassigned this`;
      case "subject_changed": return `${who} changed the subject`;
      case "marked_unread": return `${who} marked this unread`;
      case "blocked": return `${who} blocked the customer: ${d.reason || ""}`;
      case "unblocked": return `${who} unblocked the customer`;
      case "note_added": return `${who} added a note`;
      case "order_updates_off": return `${who} turned off order updates for ${d.order_id}`;
      default: return item.text || item.kind.replaceAll("_", " ");
    }
  }

  renderContent(d) {
    const parts = [];
    if (d.product) {
      const url = safeUrl(d.product.url);
      parts.push(el("div", { class: "product-card" },
        el("strong", { text: d.product.title }),
        el("span", { text: money(d.product.price, d.product.currency) }),
        url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "Product page" }) : null));
    }
    if (d.discount) {
      const url = safeUrl(d.discount.url);
      parts.push(el("p", { class: "discount-line" }, "Discount ",
        url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: d.discount.code })
            : el("strong", { text: d.discount.code })));
    }
    const image = d.image_url && safeUrl(d.image_url);
    if (image) parts.push(el("img", { src: image, alt: "Image sent to the customer", loading: "lazy" }));
    return parts;
  }

  deliveryNote(item) {
    const d = item.data || {};
    const status = item.delivery_status;
    const email = d.email_fallback || d.channel === "email";
    let text;
    let cls = "delivery";
    if (status === "sent") text = email ? "Sent by email" : "Sent";
    else if (status === "failed") { text = `Failed: ${item.delivery_reason || "not delivered"}`; cls += " failed"; }
    else if (status === "held") { text = `Held: ${item.delivery_reason || "waiting for the customer"}`; cls += " held"; }
    else text = email ? "Sending by email\u2026" : "Sending\u2026";
    return el("span", { class: cls }, ` \u00b7 ${text}`);
  }

  renderProfile() {
    const d = this.detail;
    const c = d.customer;
    const place = [c.location?.city, c.location?.country].filter(Boolean).join(", ");
    this.tickLocalTime();
    fill(this.profileInfo,
      el("div", { class: "profile-head" },
        el("span", { class: "avatar", "aria-hidden": "true", text: initials(customerName(c)) }),
        el("div", {},
          el("h2", { class: "profile-name", text: customerName(c) }),
          c.email ? el("p", { class: "muted", text: c.email }) : null)),
      el("dl", { class: "facts" },
        el("dt", { text: "Customer" }), el("dd", { text: c.kind === "returning" ? "Returning customer" : "New customer" }),
        place ? [el("dt", { text: "Location" }), el("dd", { text: place })] : null,
        this.localTime.textContent ? [el("dt", { text: "Local time" }), el("dd", {}, this.localTime)] : null,
        c.locale ? [el("dt", { text: "Language" }), el("dd", { class: "language", title: c.locale, text: languageName(c.locale) })] : null),
      el("h3", { text: "Recent orders" }),
      c.recent_orders.length
        ? el("ul", { class: "orders" }, c.recent_orders.map((o) => el("li", {},
            el("strong", { text: o.order_number }), ` \u00b7 ${o.status.replaceAll("_", " ")}`,
            o.total_price ? ` \u00b7 ${money(o.total_price, o.currency)}` : "",
            el("span", { class: "muted", text: ` \u00b7 ${shortTime(o.placed_at)}` }))))
        : el("p", { class: "muted", text: "No orders yet." }),
      el("h3", { text: "Notes" }),
      c.notes.length
        ? el("ul", { class: "notes" }, c.notes.map((n) => el("li", {},
            el("p", { class: "text", text: n.text }),
            el("span", { class: "muted", text: `${n.staff_name || n.staff_id} \u00b7 ${shortTime(n.created_at)}` }))))
        : el("p", { class: "muted", text: "No notes yet." }));
  }

  /** The customer's local time now, in their time zone ("Fri 14:05 (Europe/Zurich)"). */
  tickLocalTime() {
    const zone = this.detail?.customer?.timezone;
    const local = zone ? localTimeIn(zone) : null;
    this.localTime.textContent = local ? `${local} (${zone})` : "";
    if (local) this.localTime.setAttribute("data-zone", zone);
  }

  // --- acting ------------------------------------------------------------------------------

  /** Run a command; its effect arrives with the live updates (and a refresh just in case). */
  async act(command, done) {
    try {
      await command();
      if (done) this.ctx.toast(done);
      this.ctx.changed();
      return true;
    } catch (e) {
      this.ctx.toast(e.message, true);
      return false;
    }
  }

  setStatus(status) {
    return this.act(() => post(`/conversations/${this.id}/status`, { status }),
                    status === "closed" ? "Conversation closed." : "Conversation reopened.");
  }

  pickAssignee() {
    picker({
      title: "Assign to",
      searchLabel: "Search staff by name or email",
      load: async (q) => (await get(`/staff/assignable${query({ q })}`)).items,
      label: (s) => [s.staff_id === this.ctx.me.staff_id ? `${s.name} (me)` : s.name, s.email],
      empty: "Nobody with the chat permission matches.",
      onPick: (s) => this.act(() => post(`/conversations/${this.id}/assign`, { staff_id: s.staff_id }),
                              `Assigned to ${s.name}.`),
    });
  }

  setAttachment(attachment) {
    this.attachment = attachment;
    if (!attachment) {
      this.chip.hidden = true;
      fill(this.chip);
      return;
    }
    this.chip.hidden = false;
    fill(this.chip, el("span", { text: attachment.label }),
      el("button", { type: "button", class: "quiet", text: "Remove", "aria-label": `Remove ${attachment.label}`,
                     onclick: () => { this.setAttachment(null); this.text.focus(); } }));
  }

  pickProduct() {
    picker({
      title: "Share a product",
      searchLabel: "Search Online Store products",
      load: async (q) => (await get(`/products${query({ q, online_store: true })}`)).items,
      label: (p) => [p.title, money(p.price, p.currency)],
      empty: "No Online Store product matches.",
      onPick: (p) => {
        this.setAttachment({ type: "product", value: p.product_id, label: `Product: ${p.title}` });
        this.text.focus();
      },
    });
  }

  pickDiscount() {
    picker({
      title: "Share a discount code",
      searchLabel: "Search active codes",
      load: async (q) => {
        const codes = (await get("/discounts?status=active")).items.filter((c) => c.shareable);
        return codes.filter((c) => c.code.toLowerCase().includes(q.toLowerCase()));
      },
      label: (c) => [c.code, c.ends_at ? `until ${shortTime(c.ends_at)}` : "no end date"],
      empty: "No active discount code matches.",
      onPick: (c) => {
        this.setAttachment({ type: "discount", value: c.code, label: `Discount: ${c.code}` });
        this.text.focus();
      },
    });
  }

  askToBlock() {
    prompt({
      title: "Block this customer",
      label: "Why (kept with the block; the customer is not told)",
      action: "Block",
      submit: async (reason) => {
        if (!reason) throw new Error("Say why, for your colleagues.");
        await this.act(() => post(`/conversations/${this.id}/block`, { reason }), "Blocked.");
      },
    });
  }

  pickImage() {
    prompt({
      title: "Send an image",
      label: "Image address (https://\u2026)",
      type: "url",
      placeholder: "https://",
      action: "Add image",
      submit: (value) => {
        if (!safeUrl(value)) throw new Error("Enter a web address starting with https:// or http://");
        this.setAttachment({ type: "image", value, label: `Image: ${value}` });
        this.text.focus();
      },
    });
  }

  pickSavedReply() {
    picker({
      title: "Insert a saved reply",
      searchLabel: "Type a shortcut",
      load: async (q) => (await get(`/saved-replies${query({ q: q.replace(/^\//, "") })}`)).items,
      label: (r) => [`/${r.shortcut}`, r.body],
      empty: "No saved reply matches. Add them under Saved replies.",
      onPick: async (r) => {
        const preview = await get(`/saved-replies/${r.saved_reply_id}/preview${query({ conversation_id: this.id })}`);
        const text = preview.text ?? preview.body ?? r.body;
        const current = this.text.value;
        this.text.value = current && !current.endsWith("\n") ? `${current}\n${text}` : current + text;
        this.text.focus();
      },
    });
  }

  manageSavedReplies() { manageSavedReplies(); }

  async send() {
    const text = this.text.value.trim();
    const attachment = this.attachment;
    if (!text && !attachment) {
      this.composerError.textContent = "Write something or add a product, a discount or an image.";
      this.text.focus();
      return;
    }
    const body = {};
    if (text) body.text = text;
    if (attachment?.type === "product") body.product_id = attachment.value;
    if (attachment?.type === "discount") body.discount_code = attachment.value;
    if (attachment?.type === "image") body.image_url = attachment.value;
    // The composer empties at once, so the next message can be written while this one is on
    // its way (clearing it when the answer came would wipe what was typed meanwhile); a refused
    // message comes back, unless another is being written by then. (A second click finds it
    // empty, so nothing goes twice.)
    const id = this.id;
    this.text.value = "";
    this.setAttachment(null);
    this.composerError.textContent = "";
    if (document.activeElement === this.sendButton) this.text.focus();
    try {
      await post(`/conversations/${id}/replies`, body);
      this.ctx.changed();
    } catch (e) {
      if (id !== this.id) return;
      if (!this.text.value.trim() && !this.attachment) {
        this.text.value = text;
        this.setAttachment(attachment);
      }
      this.composerError.textContent = e.message;
      this.text.focus();
    }
  }
}
