"""Configuration: typed models, the YAML loader and the cross-reference checks."""
