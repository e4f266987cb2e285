"""Virtual API keys: how they are made and hashed, and where their records are kept."""
