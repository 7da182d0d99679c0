"""A customer's answer to a clarifying question ("did you mean A or B?"), the same for Slack and the terminal.

A pick is a customer-confirmed label: it is stored as a customer rating of the clarifying answer with source
`clarify` (`storage.repository.CLARIFY_SOURCE`) and the picked intent as `corrected_intent` (the nightly job
trusts it under the trust policy, see `training.feedback`). "Something else" is stored as an unhelpful rating
with no label, and the question is handed off.
"""

from __future__ import annotations

from storage.models import Rating
from storage.repository import CLARIFY_SOURCE, Repository

SOMETHING_ELSE = "something_else"
"""The choice value of "Something else" (hand off to a person)."""


def record_choice(repo: Repository, answer_id: int, *, user_id: str, intent: str | None) -> Rating:
    """Store the customer's pick (`intent`, or None for "Something else") on the clarifying answer.

    Raises:
        StorageError: The answer does not exist.
    """
    return repo.add_rating(
        answer_id,
        rater_id=user_id,
        rater_role="customer",
        helpful=intent is not None,
        corrected_intent=intent,
        source=CLARIFY_SOURCE,
    )
