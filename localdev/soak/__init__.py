"""``make soak`` (``python -m localdev.soak``): many messages through a stack of its own."""
