// Modal dialogs (<dialog>): a searchable picker, a small form, and the saved replies manager.
// A <dialog> opened with showModal() keeps the focus inside and closes on Escape; on close the
// focus goes back to the control that opened it.

import { ApiError, debounce, del, el, fill, get, post, put } from "./lib.js";

export function dialogShell(title, { wide = false } = {}) {
  const opener = document.activeElement;
  const heading = el("h2", { id: `dialog-title-${Date.now()}`, text: title });
  const close = el("button", { type: "button", class: "quiet close", "aria-label": "Close", text: "\u00d7" });
  const body = el("div", { class: "dialog-body" });
  const dialog = el("dialog", { class: wide ? "dialog wide" : "dialog", "aria-labelledby": heading.id },
    el("header", { class: "dialog-header" }, heading, close), body);
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    // The close event comes a moment after the dialog closed: the keyboard goes back to the
    // opener only if the merchant has not already put it somewhere else meanwhile.
    const active = document.activeElement;
    const unclaimed = !active || active === document.body || active === opener || dialog.contains(active);
    dialog.remove();
    if (unclaimed && opener && document.contains(opener)) opener.focus();
  });
  document.body.append(dialog);
  return { dialog, body };
}

/**
 * A list to choose one item from, with a search box.
 *   load(q) -> Promise<items>; label(item) -> [main, secondary?]; onPick(item) -> Promise|void
 */
export function picker({ title, searchLabel, load, label, onPick, empty = "Nothing found." }) {
  const { dialog, body } = dialogShell(title);
  const inputId = `picker-search-${Date.now()}`;
  const search = el("input", { id: inputId, type: "search", autocomplete: "off" });
  const list = el("ul", { class: "picker-list", "aria-label": title });
  const error = el("p", { class: "error", role: "alert" });
  body.append(el("label", { for: inputId, text: searchLabel }), search, list, error);

  let generation = 0;
  async function refresh() {
    const mine = ++generation;
    list.setAttribute("aria-busy", "true");
    try {
      const items = await load(search.value.trim());
      if (mine !== generation) return;
      fill(list, items.length ? items.map((item) => {
        const [main, secondary] = label(item);
        const button = el("button", { type: "button", class: "picker-item" },
          el("span", { class: "picker-main", text: main }),
          secondary ? el("span", { class: "picker-secondary", text: secondary }) : null);
        button.addEventListener("click", async () => {
          error.textContent = "";
          try {
            await onPick(item);
            dialog.close();
          } catch (e) {
            error.textContent = e.message;
          }
        });
        return el("li", {}, button);
      }) : el("li", { class: "muted", text: empty }));
    } catch (e) {
      if (mine === generation) error.textContent = e.message;
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }
  search.addEventListener("input", debounce(refresh, 200));
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      list.querySelector("button")?.focus();
    }
  });
  list.addEventListener("keydown", (event) => {
    const buttons = [...list.querySelectorAll("button")];
    const index = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && index < buttons.length - 1) buttons[index + 1].focus();
    else if (event.key === "ArrowUp") (index > 0 ? buttons[index - 1] : search).focus();
    else return;
    event.preventDefault();
  });
  dialog.showModal();
  search.focus();
  refresh();
  return dialog;
}

/** A one-field form, e.g. an image address. `submit(value)` may throw to show an error. */
export function prompt({ title, label, type = "text", placeholder = "", action = "OK", submit }) {
  const { dialog, body } = dialogShell(title);
  const id = `prompt-${Date.now()}`;
  const input = el("input", { id, type, placeholder, required: true, autocomplete: "off" });
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "stack" },
    el("label", { for: id, text: label }), input, error,
    el("div", { class: "row-end" }, el("button", { type: "submit", class: "primary", text: action })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await submit(input.value.trim());
      dialog.close();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  body.append(form);
  dialog.showModal();
  input.focus();
  return dialog;
}

/** The shop's saved replies: list, add, edit, delete. */
export function manageSavedReplies({ onChange = () => {} } = {}) {
  const { dialog, body } = dialogShell("Saved replies", { wide: true });
  const list = el("ul", { class: "saved-list", "aria-label": "Saved replies" });
  const error = el("p", { class: "error", role: "alert" });
  const shortcut = el("input", { id: "saved-shortcut", required: true, maxlength: 64, autocomplete: "off",
                                 pattern: "\\S+", "aria-describedby": "saved-shortcut-hint" });
  const text = el("textarea", { id: "saved-body", required: true, rows: 4, maxlength: 5000,
                                "aria-describedby": "saved-body-hint" });
  const submit = el("button", { type: "submit", class: "primary", text: "Add saved reply" });
  const cancel = el("button", { type: "button", class: "quiet", text: "Cancel editing", hidden: true });
  let editing = null;
  const form = el("form", { class: "stack saved-form" },
    el("h3", { text: "Add or edit" }),
    el("label", { for: "saved-shortcut", text: "Shortcut" }), shortcut,
    el("p", { id: "saved-shortcut-hint", class: "hint", text: "One word, e.g. shipping." }),
    el("label", { for: "saved-body", text: "Text" }), text,
    el("p", { id: "saved-body-hint", class: "hint",
              text: "Placeholders: {{ customer_first_name }}, {{ customer_name }}, {{ order_number }}, {{ shop_name }}, {{ staff_name }}" }),
    error, el("div", { class: "row-end" }, cancel, submit));

  function edit(reply) {
    editing = reply;
    shortcut.value = reply ? reply.shortcut : "";
    text.value = reply ? reply.body : "";
    submit.textContent = reply ? "Save changes" : "Add saved reply";
    cancel.hidden = !reply;
    if (reply) shortcut.focus();
  }
  cancel.addEventListener("click", () => edit(null));

  async function refresh() {
    try {
      const { items } = await get("/saved-replies");
      fill(list, items.length ? items.map((reply) => el("li", { class: "saved-item" },
        el("div", {}, el("strong", { text: `/${reply.shortcut}` }), el("p", { class: "saved-body", text: reply.body })),
        el("div", { class: "saved-actions" },
          el("button", { type: "button", class: "quiet", text: "Edit", "aria-label": `Edit /${reply.shortcut}`,
                         onclick: () => edit(reply) }),
          el("button", { type: "button", class: "quiet danger", text: "Delete",
                         "aria-label": `Delete /${reply.shortcut}`,
                         onclick: async () => {
                           try {
                             await del(`/saved-replies/${reply.saved_reply_id}`);
                             if (editing?.saved_reply_id === reply.saved_reply_id) edit(null);
                             await refresh();
                             onChange();
                           } catch (e) { error.textContent = e.message; }
                         } })))) : el("li", { class: "muted", text: "No saved replies yet." }));
    } catch (e) {
      error.textContent = e.message;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const payload = { shortcut: shortcut.value.trim().replace(/^\//, ""), body: text.value };
    try {
      if (editing) await put(`/saved-replies/${editing.saved_reply_id}`, payload);
      else await post("/saved-replies", payload);
      edit(null);
      await refresh();
      onChange();
    } catch (e) {
      error.textContent = e instanceof ApiError ? e.message : String(e);
    }
  });

  body.append(list, form);
  dialog.showModal();
  shortcut.focus();
  refresh();
  return dialog;
}
