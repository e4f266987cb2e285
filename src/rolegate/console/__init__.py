"""The admin console: server-rendered pages, signed in with OpenID Connect."""
