"""The store's API: everything the product logs, read and written through one class.

`Repository` is composed of one part per concern (each in a private module): the conversation log
(`_conversations`), the inbox of work accepted and not yet done (`_inbox`), reports over time windows
(`_reports`), the agents' work lists: review queue, discovery proposals, digest postings (`_curation`), the
evaluation set / model registry / training runs (`_registry`) and deletions (`_retention`). Callers only ever
use `Repository` and the names below.

Guarantees:

* All returned table objects are detached from their session (safe to read attributes after return).
* Free text (message text, answer text, corrected answers, evaluation examples) is PII-masked first when
  `mask_pii` is on (`storage.privacy.mask_pii`).
* Every string is normalised the same way on SQLite and PostgreSQL (`storage.text.clean_text`: NULs
  removed, lone surrogates replaced by U+FFFD); values longer than their column are refused.
* Times are timezone-aware UTC datetimes; naive datetimes passed in are refused.
* Every failure is a `StorageError` (or `DuplicateEventError`) whose message says what to do; a database
  that goes away mid-call is reported the same way, never as a raw SQLAlchemy error.

* The conversation log is written in whole operations, one transaction each (see `storage._conversations`):
  one answered question is `thread_state` (read), `record_question_turn` and `mark_posted` (or `mark_failed`).

Example:
    >>> repo = Repository("sqlite:///tmp/supportbot.db")
    >>> thread = ThreadRef(team_id="T1", channel_id="C1", thread_ts="1700000000.000100")
    >>> answer = NewAnswer(text="Use the reset link.", source="intent", intent="reset_password", confidence=0.9)
    >>> turn = repo.record_question_turn(thread, user_id="U1", text="Mail me at jo@example.com", answer=answer)
    >>> repo.mark_posted(turn.answer_id, channel_id="C1", slack_ts="1700000001.000200")
    >>> [m.text for m in repo.messages(turn.conversation.id)]
    ['Mail me at [EMAIL]', 'Use the reset link.']
"""

from __future__ import annotations

from storage._conversation_rows import (
    CLARIFY_SOURCE,
    AnswerSource,
    ConversationSource,
    HandoffReason,
    NewAnswer,
    RaterRole,
    RatingSource,
    Role,
    ThreadRef,
)
from storage._conversations import AnswerContext, ConversationLog, ThreadState, Turn
from storage._curation import PROPOSAL_STATUSES, Curation, NewReviewItem, ProposalStatus, QueueEntry
from storage._inbox import Inbox
from storage._registry import MODEL_STATUSES, Registry
from storage._reports import RatedAnswer, Stats
from storage._retention import Retention

__all__ = [
    "CLARIFY_SOURCE",
    "MODEL_STATUSES",
    "PROPOSAL_STATUSES",
    "AnswerContext",
    "AnswerSource",
    "ConversationSource",
    "HandoffReason",
    "NewAnswer",
    "NewReviewItem",
    "ProposalStatus",
    "QueueEntry",
    "RatedAnswer",
    "RaterRole",
    "RatingSource",
    "Repository",
    "Role",
    "Stats",
    "ThreadRef",
    "ThreadState",
    "Turn",
]


class Repository(ConversationLog, Inbox, Curation, Registry, Retention):
    """Store of conversations, messages, answers, ratings, hand-offs, model registry and training runs.

    Args:
        url: SQLAlchemy URL (`sqlite:///path.db` or `postgresql+psycopg://...`).
        mask_pii: mask e-mails, phones, cards and IBANs in all stored text.
        upgrade: apply Alembic migrations on construction (safe when several processes start at once).

    Raises:
        StorageError: bad URL, unreachable database, or a failed migration.
    """
