"""supportbot: training."""
