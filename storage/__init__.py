"""supportbot: storage."""
