/*
 * The demo storefront: the shop's Online Store products, a cart whose changes become
 * `storefront.cart` events (through the chat widget's visitor), and the chat widget itself.
 * Open it as /storefront/demo?shop=<shop id>.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var shopId = params.get("shop") || "demo-shop";
  var api = "/storefront/api/shops/" + encodeURIComponent(shopId);
  var products = {};
  var currency = "EUR";
  var cartKey = "demo-store:" + shopId + ":cart";
  var cart = load();

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

  function load() {
    try { return JSON.parse(localStorage.getItem(cartKey) || "{}"); } catch (e) { return {}; }
  }

  function save() {
    try { localStorage.setItem(cartKey, JSON.stringify(cart)); } catch (e) { /* private mode */ }
  }

  function cents(price) { return Math.round(parseFloat(price) * 100); }
  function money(amount) { return (amount / 100).toFixed(2) + " " + currency; }

  function notice(text) { $("notice").textContent = text; }

  /** The cart as the storefront.cart contract describes it. */
  function contents() {
    var total = 0;
    var items = Object.keys(cart).filter(function (id) { return products[id]; }).map(function (id) {
      total += cents(products[id].price) * cart[id];
      return { product_id: id, title: products[id].title, quantity: cart[id] };
    });
    return { currency: currency, subtotal: (total / 100).toFixed(2), items: items };
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
    if (window.InboxChat) {
      window.InboxChat.cart(action, productId, 1, contents()).catch(function (error) {
        notice("The shop did not get the cart change: " + error.message);
      });
    }
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
  }

  function loadWidget() {
    var script = document.createElement("script");
    script.src = "/storefront/widget.js";
    script.defer = true;
    script.setAttribute("data-shop", shopId);
    document.body.appendChild(script);
  }

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
    loadWidget();
  }).catch(function (error) {
    notice(error.message);
  });
})();
