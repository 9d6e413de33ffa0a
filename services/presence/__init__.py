"""Presence: who is on the storefront now."""
