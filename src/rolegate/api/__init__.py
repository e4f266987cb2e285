"""The gateway's API surface: every route it answers, the route group the policy grants for it, and its operation."""
