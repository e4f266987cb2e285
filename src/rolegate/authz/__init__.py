"""Authorization: what a `Principal` may do. Pure, no I/O."""
