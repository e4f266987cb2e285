"""The audit log: an append-only, hash-chained record of admin changes and authorization
decisions."""
