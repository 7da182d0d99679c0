"""The nightly training set, built from the seed examples and what agents and customers said in the logs.

Pure functions over the repository's return types (`RatedAnswer`, `Rating`, `EvalExample` texts): no database,
no model. `bot.retrain` reads the store and hands the results here (then to `training.pipeline`).

Where labels come from (each log rating becomes at most one *observation*):

- **agent correction**: an agent set `corrected_intent` (any intent, `out_of_scope` included, or a brand-new
  one: the label set grows);
- **agent confirmation**: an agent rated an intent answer helpful: the predicted intent is right;
- **agent veto**: an agent rated an intent answer unhelpful without saying what is right: the predicted intent
  is wrong for this question (it removes that label, and adds none);
- **customer**: a customer rated an intent answer helpful, used only when `TrustPolicy.trust_customers` and the
  answer's confidence was at least `customer_min_confidence`; or a customer picked an intent in a clarifying
  question (rating source `clarify`, under `trust_customers` whatever the confidence: the customer chose it).
  Unhelpful customer ratings never create a label.

"The same text" is `storage.text.text_key` (NFKC, case-folded, whitespace-collapsed), the key of the stored
evaluation set, so a variant of an evaluation question (other case, spacing, full-width letters) is never
trained on. Conflicts are resolved per text key: the latest agent decision wins; without one the seed label wins;
without one the latest trusted customer label. A new agent-labelled question is set aside for the frozen
evaluation set the first time it is seen, deterministically by the hash of its text, and never trained on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from storage.models import EvalExample
from storage.repository import RatedAnswer
from storage.text import text_form, text_key
from training.data import OUT_OF_SCOPE, Example, dataset_hash
from training.text import normalise_text

Origin = Literal["seed", "agent_correction", "agent_confirmation", "customer"]
ORIGINS: tuple[Origin, ...] = ("seed", "agent_correction", "agent_confirmation", "customer")

MIN_TRAIN_PER_LABEL = 2
"""A held-out example is only set aside if its label keeps at least this many training examples."""
CALIBRATION_SHARE = 0.5
"""Share of the agent-labelled out-of-scope log questions kept out of training to calibrate the operating point."""
MIN_LABELLED_FOR_SHARE = 50
"""Agent-labelled log questions needed before their out-of-scope share replaces the configured OOS_SHARE."""
SHARE_BOUNDS = (0.02, 0.9)
"""The measured share is kept within these: agents label hand-offs more than answers, so it is a biased
estimate, and a share of 0 or 1 would make every threshold degenerate."""


def holdout_fraction(text: str, purpose: str = "") -> float:
    """A stable number in [0, 1) from the text's canonical form (`storage.text.text_form`): the same text
    (whatever its case, spacing or Unicode form) always gets the same number; examples below the eval share
    are held out.

    A `purpose` (e.g. "calibration") gives an independent number for another split of the same texts.
    """
    digest = hashlib.sha256((purpose + text_form(text)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class TrustPolicy:
    """Which customer ratings become labels.

    Args:
        trust_customers: use customers' helpful ratings at all.
        customer_min_confidence: only of answers given with at least this confidence.
    """

    trust_customers: bool = True
    customer_min_confidence: float = 0.8


@dataclass(frozen=True)
class Observation:
    """One labelling decision found in the logs.

    Attributes:
        text: the question (normalised, PII-masked by the store).
        label: the label it gives, or None for an agent veto.
        origin: who decided (a veto has origin `agent_correction`).
        at: when the rating was made.
        rejected: for a veto, the intent the agent rejected.
    """

    text: str
    label: str | None
    origin: Origin
    at: datetime
    rejected: str | None = None

    @property
    def by_agent(self) -> bool:
        return self.origin in ("agent_correction", "agent_confirmation")


@dataclass(frozen=True)
class WrittenAnswer:
    """An answer an agent wrote for a question (latest per question).

    Attributes:
        key: stable id derived from the question's text (the KB document id is `agent/<key>`).
        question: the customer's question.
        answer: what the agent wrote.
        intent: the intent the agent gave with it, if any.
        at: when it was written.
    """

    key: str
    question: str
    answer: str
    intent: str | None
    at: datetime


@dataclass
class FeedbackDataset:
    """Everything the nightly job trains and evaluates on, with where it came from.

    Attributes:
        train: training examples (seed + logs, deduplicated, evaluation texts excluded).
        eval: the frozen evaluation set after this run (existing rows plus `new_eval`).
        new_eval: (text, label, origin) rows to add to the store's evaluation set now.
        labels: the label set of `train`, sorted.
        new_intents: labels introduced by agents (not in the seed), sorted.
        intent_answers: agent-written answer of each new intent (the latest one).
        written_answers: every agent-written answer (for the knowledge base), oldest first.
        provenance: counts for the report (winning origin per training example, conflicts, vetoes, ...).
        hash: `dataset_hash(train)`.
        calibration_oos: agent-labelled out-of-scope log questions kept out of training; they calibrate the
            candidate's operating point (`CALIBRATION_SHARE` of them, by text hash).
        oos_share: the out-of-scope share among agent-labelled log questions (within `SHARE_BOUNDS`), once
            there are `MIN_LABELLED_FOR_SHARE` of them (else None: the configured OOS_SHARE applies).
    """

    train: list[Example]
    eval: list[Example]
    new_eval: list[tuple[str, str, str]]
    labels: list[str]
    new_intents: list[str]
    intent_answers: dict[str, str]
    written_answers: list[WrittenAnswer]
    provenance: dict[str, int] = field(default_factory=dict)
    hash: str = ""
    calibration_oos: list[str] = field(default_factory=list)
    oos_share: float | None = None

    @property
    def intents_without_answer(self) -> list[str]:
        """New intents no agent has written an answer for (the bot cannot answer them with curated text)."""
        return [intent for intent in self.new_intents if intent not in self.intent_answers]


def observations(rated: Iterable[RatedAnswer], policy: TrustPolicy) -> tuple[list[Observation], Counter[str]]:
    """Turn rated answers into labelling observations under the trust policy.

    Returns:
        The observations (oldest first) and counts of ratings that gave no label, by reason.
    """
    found: list[tuple[datetime, int, Observation]] = []
    ignored: Counter[str] = Counter()
    for item in rated:
        text = normalise_text(item.question.text)
        answer = item.answer
        if not text:
            ignored["empty_question"] += len(item.ratings)
            continue
        for rating in item.ratings:
            order = (rating.created_at, rating.id or 0)
            corrected = (rating.corrected_intent or "").strip()
            if rating.rater_role == "agent":
                if corrected:
                    found.append((*order, Observation(text, corrected, "agent_correction", rating.created_at)))
                elif answer.source != "intent" or not answer.intent:
                    ignored["agent_rating_without_intent"] += 1
                elif rating.helpful is True:
                    found.append((*order, Observation(text, answer.intent, "agent_confirmation", rating.created_at)))
                elif rating.helpful is False:
                    veto = Observation(text, None, "agent_correction", rating.created_at, rejected=answer.intent)
                    found.append((*order, veto))
                else:
                    ignored["agent_rating_without_verdict"] += 1
            elif rating.rater_role == "customer" and rating.source == "clarify" and corrected:
                # The customer picked this intent in a clarifying question: a customer-confirmed label.
                if policy.trust_customers:
                    found.append((*order, Observation(text, corrected, "customer", rating.created_at)))
                else:
                    ignored["customer_untrusted"] += 1
            elif rating.rater_role == "customer":
                reason = _customer_reason(item, rating.helpful, policy)
                if reason:
                    ignored[reason] += 1
                else:
                    assert answer.intent is not None
                    found.append((*order, Observation(text, answer.intent, "customer", rating.created_at)))
            else:
                ignored["unknown_rater_role"] += 1
    found.sort(key=lambda row: (row[0], row[1]))
    return [obs for _, _, obs in found], ignored


def _customer_reason(item: RatedAnswer, helpful: bool | None, policy: TrustPolicy) -> str | None:
    """Why a customer rating gives no label, or None when it gives one."""
    if helpful is not True:
        return "customer_not_helpful"
    if not policy.trust_customers:
        return "customer_untrusted"
    if item.answer.source != "intent" or not item.answer.intent:
        return "customer_not_intent_answer"
    if item.answer.confidence is None or item.answer.confidence < policy.customer_min_confidence:
        return "customer_low_confidence"
    return None


def written_answers(rated: Iterable[RatedAnswer]) -> list[WrittenAnswer]:
    """Agent-written answers, the latest per question text, oldest first."""
    latest: dict[str, tuple[tuple[datetime, int], WrittenAnswer]] = {}
    for item in rated:
        question = normalise_text(item.question.text)
        for rating in item.ratings:
            written = (rating.corrected_answer or "").strip()
            if rating.rater_role != "agent" or not written or not question:
                continue
            key = text_key(question)
            order = (rating.created_at, rating.id or 0)
            intent = (rating.corrected_intent or "").strip() or None
            record = WrittenAnswer(_short_hash(text_form(question)), question, written, intent, rating.created_at)
            if key not in latest or latest[key][0] <= order:
                latest[key] = (order, record)
    return [record for _, record in sorted(latest.values(), key=lambda row: row[0])]


def _short_hash(form: str) -> str:
    """The KB id of an agent answer: from the question's `text_form` (kept stable across releases)."""
    return hashlib.sha256(form.encode("utf-8")).hexdigest()[:16]


@dataclass
class _Resolved:
    text: str
    label: str
    origin: Origin
    first_seen_at: datetime | None
    """When the logs first labelled this text; None for seed texts (trained on from the start)."""


def resolve(seed: Sequence[Example], found: Sequence[Observation]) -> tuple[dict[str, _Resolved], Counter[str]]:
    """One label per text (`text_key`): latest agent decision > seed > latest trusted customer.

    Returns:
        key -> resolved label, and counts (`conflicts`: texts with more than one label proposed, `vetoed`:
        texts dropped because an agent rejected the only label they had).
    """
    counts: Counter[str] = Counter()
    seed_by_key: dict[str, Example] = {}
    for example in seed:
        seed_by_key.setdefault(text_key(example.text), example)
    by_key: dict[str, list[Observation]] = {}
    for obs in found:  # already oldest first
        by_key.setdefault(text_key(obs.text), []).append(obs)

    resolved: dict[str, _Resolved] = {
        key: _Resolved(example.text, example.label, "seed", None)
        for key, example in seed_by_key.items()
        if key not in by_key
    }
    for key, history in by_key.items():
        seeded = seed_by_key.get(key)
        proposed = {obs.label for obs in history if obs.label is not None}
        if seeded is not None:
            proposed.add(seeded.label)
        if len(proposed) > 1:
            counts["conflicts"] += 1

        agent_label: Observation | None = None
        vetoed: set[str] = set()
        for obs in history:
            if not obs.by_agent:
                continue
            if obs.label is not None:
                agent_label = obs
                vetoed.discard(obs.label)
            else:
                assert obs.rejected is not None
                vetoed.add(obs.rejected)
                if agent_label is not None and agent_label.label == obs.rejected:
                    agent_label = None
        first_seen_at = None if seeded is not None else next((obs.at for obs in history if obs.label), None)
        text = seeded.text if seeded is not None else history[-1].text
        if agent_label is not None:
            assert agent_label.label is not None
            resolved[key] = _Resolved(text, agent_label.label, agent_label.origin, first_seen_at)
            continue
        customers = [obs for obs in history if obs.origin == "customer" and obs.label is not None]
        fallback: tuple[str, Origin] | None = None
        if seeded is not None:
            fallback = (seeded.label, "seed")
        elif customers:
            assert customers[-1].label is not None
            fallback = (customers[-1].label, "customer")
        if fallback is None:
            continue  # only vetoes: nothing to learn
        if fallback[0] in vetoed:
            counts["vetoed"] += 1
            continue
        resolved[key] = _Resolved(text, fallback[0], fallback[1], first_seen_at)
    return resolved, counts


def build_dataset(
    seed: Sequence[Example],
    rated: Sequence[RatedAnswer],
    *,
    eval_existing: Sequence[EvalExample],
    eval_seed: Sequence[Example] | None,
    eval_share: float,
    policy: TrustPolicy,
    since: datetime | None = None,
    out_of_scope_label: str = OUT_OF_SCOPE,
) -> FeedbackDataset:
    """Build the training set and the frozen evaluation set for one nightly run.

    Args:
        seed: the curated examples (the intents file, via `training.data.load_examples`).
        rated: every rated answer in the logs (`Repository.ratings_since(...)`).
        eval_existing: the evaluation set already stored (`Repository.eval_examples()`).
        eval_seed: the seed test split (e.g. `test.csv`); None when there is none, in which case the first run
            sets aside `eval_share` of the seed examples instead (by text hash).
        eval_share: share of newly seen agent-labelled questions set aside for evaluation.
        policy: which customer ratings count.
        since: agent-labelled questions first labelled before this time were already seen by an earlier run
            (so were either set aside then or trained on); only later ones can be set aside now.
            None: all are new (first run).
        out_of_scope_label: the label of questions the bot must not answer (never a "new intent").

    Returns:
        The dataset; add `new_eval` to the store (`Repository.add_eval_examples`).
    """
    if not 0.0 <= eval_share < 1.0:
        raise ValueError(f"eval_share must be in [0, 1), got {eval_share}")
    found, ignored = observations(rated, policy)
    resolved, counts = resolve(seed, found)
    eval_keys = {text_key(row.text) for row in eval_existing}
    eval_rows = [Example(normalise_text(row.text), row.label) for row in eval_existing]
    new_eval: list[tuple[str, str, str]] = []

    def set_aside(key: str, text: str, label: str, origin: str) -> None:
        eval_keys.add(key)
        eval_rows.append(Example(text, label))
        new_eval.append((text, label, origin))

    candidates: list[str] = []
    if eval_seed is not None:
        for example in eval_seed:
            key = text_key(example.text)
            if key not in eval_keys:
                set_aside(key, normalise_text(example.text), example.label, "seed")
    elif not any(row.origin == "seed" for row in eval_existing):  # else an earlier run made the seed split
        candidates = [key for key, row in resolved.items() if row.origin == "seed"]

    candidates += [
        key
        for key, row in resolved.items()
        if row.origin in ("agent_correction", "agent_confirmation")
        and row.first_seen_at is not None
        and (since is None or row.first_seen_at >= since)
    ]
    remaining = Counter(row.label for key, row in resolved.items() if key not in eval_keys)
    for key in sorted(candidates, key=lambda k: holdout_fraction(resolved[k].text)):
        row = resolved[key]
        if key in eval_keys or holdout_fraction(row.text) >= eval_share:
            continue
        if remaining[row.label] - 1 < MIN_TRAIN_PER_LABEL:
            continue
        remaining[row.label] -= 1
        set_aside(key, row.text, row.label, "seed" if row.origin == "seed" else "log")

    train: list[Example] = []
    calibration_oos: list[str] = []
    by_origin: Counter[str] = Counter()
    excluded = 0
    for key, row in resolved.items():
        if key in eval_keys:
            excluded += 1
            continue
        if (
            row.label == out_of_scope_label
            and row.origin == "agent_correction"
            and holdout_fraction(row.text, "calibration") < CALIBRATION_SHARE
        ):
            calibration_oos.append(row.text)
            continue
        train.append(Example(row.text, row.label))
        by_origin[row.origin] += 1
    train.sort(key=lambda ex: (ex.label, ex.text))
    labelled = [row for row in resolved.values() if row.first_seen_at is not None and row.origin != "customer"]
    oos_share = None
    if len(labelled) >= MIN_LABELLED_FOR_SHARE:
        measured = sum(row.label == out_of_scope_label for row in labelled) / len(labelled)
        oos_share = min(max(measured, SHARE_BOUNDS[0]), SHARE_BOUNDS[1])

    seed_labels = {example.label for example in seed}
    labels = sorted({example.label for example in train})
    new_intents = [label for label in labels if label not in seed_labels and label != out_of_scope_label]
    answers = written_answers(rated)
    intent_answers = {record.intent: record.answer for record in answers if record.intent in new_intents}

    provenance: dict[str, int] = {f"train_{origin}": by_origin[origin] for origin in ORIGINS}
    provenance |= {
        "train_total": len(train),
        "eval_total": len(eval_rows),
        "eval_added": len(new_eval),
        "eval_added_from_logs": sum(1 for *_, origin in new_eval if origin == "log"),
        "excluded_as_eval": excluded,
        "log_observations": len(found),
        "conflicts": counts["conflicts"],
        "vetoed": counts["vetoed"],
        "new_intents": len(new_intents),
        "agent_written_answers": len(answers),
        "calibration_oos": len(calibration_oos),
        "agent_labelled_log_questions": len(labelled),
    }
    provenance |= {f"ignored_{reason}": count for reason, count in sorted(ignored.items())}
    return FeedbackDataset(
        train=train,
        eval=eval_rows,
        new_eval=new_eval,
        labels=labels,
        new_intents=new_intents,
        intent_answers=intent_answers,
        written_answers=answers,
        provenance=provenance,
        hash=dataset_hash(train),
        calibration_oos=sorted(calibration_oos),
        oos_share=oos_share,
    )
