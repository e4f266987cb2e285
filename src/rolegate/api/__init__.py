"""The gateway's API surface: every route it answers, its route group and its operation."""
