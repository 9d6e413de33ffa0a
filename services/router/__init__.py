"""The router: conversations of record, and every reply on its way out."""
