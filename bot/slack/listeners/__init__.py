"""Bolt listeners, one module per kind of Slack payload; each module has `register(app, deps)`."""
