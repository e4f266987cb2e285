"""Usage accounting: one record per request that reached an upstream, written in batches."""
