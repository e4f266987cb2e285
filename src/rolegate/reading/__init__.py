"""Reading request bodies: what the gateway decides on, and the exact bytes it forwards."""
