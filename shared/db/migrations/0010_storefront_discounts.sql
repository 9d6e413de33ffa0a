-- A discount that applies: where the shop's Online Store is (when not at its domain, as a
-- development storefront), what each discount code takes off, and the code applied to a cart.
ALTER TABLE shops ADD COLUMN storefront_url text;
ALTER TABLE discount_codes ADD COLUMN value_type text
    CHECK (value_type IN ('percentage', 'fixed_amount'));
ALTER TABLE discount_codes ADD COLUMN value numeric(14,2);
-- {code, amount} of the discount applied to the visitor's cart, if any.
ALTER TABLE carts ADD COLUMN discount jsonb;
