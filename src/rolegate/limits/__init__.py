"""Rate limits and budgets: which quotas apply to a request, and counters that enforce them."""
