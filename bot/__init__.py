"""supportbot: bot."""
