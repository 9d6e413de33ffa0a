"""Staff sign-in: email address and password, or a one-time link by email, then a server-side
session held in an HttpOnly cookie. The endpoints are `services.gateway.api.session`;
`current_staff` in `services.gateway.auth` reads the session beside API tokens."""
