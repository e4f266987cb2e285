"""Reading request bodies: only what the gateway decides on, the rest passed through."""
