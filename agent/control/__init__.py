# Handlers of the management channel's requests (agent/uplinks/control.py),
# one module per family of request types; requests.py lists them all.
