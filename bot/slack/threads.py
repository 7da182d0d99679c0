"""What the bot effectively predicted for a stored answer (the correction modal's starting point)."""

from __future__ import annotations

from storage.models import Answer


def predicted_intent(answer: Answer, out_of_scope_label: str) -> str | None:
    """What the bot effectively predicted: its intent, or out of scope when it handed off."""
    return out_of_scope_label if answer.source == "handoff" else answer.intent
