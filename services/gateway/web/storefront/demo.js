/*
 * The demo storefront: the shop's Online Store products, a cart whose changes become
 * `storefront.cart` events (through the chat widget's visitor), and the chat widget itself.
 * Open it as /storefront/demo?shop=<shop id>.
 *
 * A shared discount link (/storefront/demo/<shop id>/discount/<CODE>, as a Shopify store's
 * /discount/<CODE>) lands here with ?discount=<CODE>: the code is checked with the shop, applied
 * to the cart (its code and the reduced subtotal are shown) and the shop is told
 * (`apply_discount`). The cart and its discount are kept in the browser, shared by its tabs.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var shopId = params.get("shop") || "demo-shop";
  var api = "/storefront/api/shops/" + encodeURIComponent(shopId);
  var products = {};
  var currency = "EUR";
  var cartKey = "demo-store:" + shopId + ":cart";
  var discountKey = "demo-store:" + shopId + ":discount";
  var cart = load(cartKey);
  var discount = load(discountKey);  // {code, value_type, value} once a code is applied
  var discountParam = params.get("discount");

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "onclick") node.addEventListener("click", attrs[name]);
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function load(key) {
    var empty = key === cartKey ? {} : null;
    try { return JSON.parse(localStorage.getItem(key) || "null") || empty; } catch (e) { return empty; }
  }

  function save() {
    try {
      localStorage.setItem(cartKey, JSON.stringify(cart));
      localStorage.setItem(discountKey, JSON.stringify(discount));
    } catch (e) { /* private mode */ }
  }

  function cents(price) { return Math.round(parseFloat(price) * 100); }
  function money(amount) { return (amount / 100).toFixed(2) + " " + currency; }

  function notice(text) { $("notice").textContent = text; }

  /** What a discount takes off `total` cents: a percentage (rounded half up to the cent) or a
   * fixed amount, never more than the total; nothing for a code of unknown value. The shop
   * applies the same rule to the cart it is told about. */
  function discountCents(total) {
    if (!discount || !discount.value || total <= 0) return 0;
    var off = discount.value_type === "percentage"
      ? Math.round(total * parseFloat(discount.value) / 100)
      : cents(discount.value);
    return Math.min(off, total);
  }

  /** The cart as the storefront.cart contract describes it (subtotal less the discount). */
  function contents() {
    var total = 0;
    var items = Object.keys(cart).filter(function (id) { return products[id]; }).map(function (id) {
      total += cents(products[id].price) * cart[id];
      return { product_id: id, title: products[id].title, quantity: cart[id] };
    });
    var off = discountCents(total);
    var current = { currency: currency, subtotal: ((total - off) / 100).toFixed(2), items: items };
    if (discount) current.discount = { code: discount.code, amount: (off / 100).toFixed(2) };
    return current;
  }

  function tellShop(action, productId) {
    if (!window.InboxChat) return;
    window.InboxChat.cart(action, productId, 1, contents()).catch(function (error) {
      notice("The shop did not get the cart change: " + error.message);
    });
  }

  function change(action, productId) {
    var quantity = cart[productId] || 0;
    if (action === "add") cart[productId] = quantity + 1;
    else if (quantity <= 1) delete cart[productId];
    else cart[productId] = quantity - 1;
    save();
    renderCart();
    var title = products[productId].title;
    notice(action === "add" ? "Added " + title + " to the cart." : "Removed " + title + " from the cart.");
    tellShop(action, productId);
  }

  function describe(found) {
    if (found.value_type === "percentage") return parseFloat(found.value) + "% off";
    if (found.value_type === "fixed_amount") return money(cents(found.value)) + " off";
    return "applied";
  }

  /** A code from a shared discount link: checked with the shop, then applied (or not, said why). */
  function applyDiscount(code) {
    // The address goes back to the store's own: a reload does not apply the code again.
    params.delete("discount");
    history.replaceState(null, "", location.pathname + "?" + params.toString() + location.hash);
    return fetch(api + "/discounts/" + encodeURIComponent(code)).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var why = typeof data.detail === "string" ? data.detail : "the code " + code + " cannot be used now";
          notice("Discount not applied: " + why + ".");
          return false;
        }
        discount = { code: data.code, value_type: data.value_type, value: data.value };
        save();
        renderCart();
        notice("Discount code " + data.code + " applied: " + describe(data) + ".");
        return true;
      });
    }).catch(function () {
      notice("The discount code " + code + " could not be checked; try the link again.");
      return false;
    });
  }

  function renderProducts(items) {
    var list = $("products");
    list.textContent = "";
    items.forEach(function (product) {
      products[product.product_id] = product;
      list.appendChild(el("li", { class: "product", "data-product": product.product_id }, [
        el("h2", { text: product.title }),
        el("p", { class: "price", text: product.price + " " + product.currency }),
        el("button", {
          type: "button", class: "add", text: "Add to cart",
          "aria-label": "Add " + product.title + " to cart",
          onclick: function () { change("add", product.product_id); },
        }),
      ]));
    });
  }

  function renderCart() {
    var list = $("cart-items");
    list.textContent = "";
    var count = 0;
    var current = contents();
    current.items.forEach(function (item) {
      count += item.quantity;
      list.appendChild(el("li", { class: "line", "data-product": item.product_id }, [
        el("span", { class: "title", text: item.title }),
        el("span", { class: "quantity", text: "\u00d7 " + item.quantity }),
        el("button", {
          type: "button", class: "remove", text: "Remove one",
          "aria-label": "Remove one " + item.title + " from cart",
          onclick: function () { change("remove", item.product_id); },
        }),
      ]));
    });
    if (!current.items.length) list.appendChild(el("li", { class: "empty", text: "Your cart is empty." }));
    $("cart-count").textContent = String(count);
    $("cart-subtotal").textContent = money(cents(current.subtotal));
    var line = $("cart-discount");
    line.hidden = !current.discount;
    if (current.discount) {
      $("discount-code").textContent = current.discount.code;
      $("discount-amount").textContent = "\u2212" + money(cents(current.discount.amount));
    }
  }

  /** The widget, then `ready` once window.InboxChat can be called. */
  function loadWidget(ready) {
    var script = document.createElement("script");
    script.src = "/storefront/widget.js";
    script.defer = true;
    script.setAttribute("data-shop", shopId);
    script.addEventListener("load", ready);
    document.body.appendChild(script);
  }

  // Another tab of this store changed the cart (a discount link opens in a new tab).
  window.addEventListener("storage", function (event) {
    if (event.key !== cartKey && event.key !== discountKey) return;
    var before = discount && discount.code;
    cart = load(cartKey);
    discount = load(discountKey);
    renderCart();
    if (discount && discount.code !== before) {
      notice("Discount code " + discount.code + " applied: " + describe(discount) + ".");
    }
  });

  function getJson(url) {
    return fetch(url).then(function (response) {
      if (!response.ok) throw new Error(response.status === 404 ? "This shop does not exist." : "The store is unavailable.");
      return response.json();
    });
  }

  getJson(api).then(function (shop) {
    currency = shop.currency;
    $("shop-name").textContent = shop.name;
    document.title = shop.name + " \u2014 demo storefront";
    return getJson(api + "/products");
  }).then(function (page) {
    renderProducts(page.items);
    renderCart();
    var applied = discountParam ? applyDiscount(discountParam) : Promise.resolve(false);
    loadWidget(function () {
      applied.then(function (yes) { if (yes) tellShop("apply_discount", null); });
    });
  }).catch(function (error) {
    notice(error.message);
  });
})();
