"""``make demo`` (``python -m localdev.demo``): realistic traffic through the deployed stack."""
