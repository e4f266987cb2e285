"""Authentication: who is calling. Credentials in, a `Principal` out."""
