"""Test support: keys and tokens, a fake clock, local servers (IdP, upstream), a real gateway
process."""
