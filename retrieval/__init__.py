"""supportbot: retrieval."""
