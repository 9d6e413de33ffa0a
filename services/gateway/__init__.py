"""The gateway: the HTTP edge (merchant API, webhooks, storefront chat)."""
