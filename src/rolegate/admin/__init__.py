"""The admin API under `/admin/` (route group `admin`)."""
