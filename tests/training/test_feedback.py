"""The nightly dataset from seed + logs: trust policy, dedupe, conflicts, new intents, eval holdout (no model)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from storage.models import Answer, EvalExample, Message, Rating
from storage.repository import RatedAnswer
from storage.text import text_key as store_key
from training.data import Example
from training.feedback import (
    FeedbackDataset,
    TrustPolicy,
    build_dataset,
    holdout_fraction,
    observations,
    text_key,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)

SEED = [
    Example("how do i reset my password", "reset_password"),
    Example("i forgot my password", "reset_password"),
    Example("password reset link", "reset_password"),
    Example("how much does the pro plan cost", "pricing"),
    Example("what are your prices", "pricing"),
    Example("price list please", "pricing"),
    Example("what is the weather", "out_of_scope"),
    Example("tell me a joke", "out_of_scope"),
]


def rated(
    question: str,
    *ratings: tuple[str, bool | None, str | None, int],
    intent: str | None = "pricing",
    confidence: float = 0.95,
    source: str = "intent",
    written: str | None = None,
) -> RatedAnswer:
    """A rated answer; each rating is (role, helpful, corrected_intent, minutes after T0)."""
    answer_id = next(_ids)
    answer = Answer(
        id=answer_id,
        conversation_id=1,
        question_id=answer_id,
        text="...",
        source=source,
        intent=intent,
        confidence=confidence,
    )
    message = Message(id=answer_id, conversation_id=1, role="user", text=question)
    rows = [
        Rating(
            id=next(_ids),
            answer_id=answer_id,
            rater_id=f"U{role}",
            rater_role=role,
            helpful=helpful,
            corrected_intent=corrected,
            corrected_answer=written if corrected or role == "agent" else None,
            created_at=T0 + timedelta(minutes=minute),
        )
        for role, helpful, corrected, minute in ratings
    ]
    return RatedAnswer(answer=answer, question=message, ratings=rows)


def build(
    logs: list[RatedAnswer],
    *,
    policy: TrustPolicy | None = None,
    eval_existing: list[EvalExample] | None = None,
    eval_seed: list[Example] | None = None,
    share: float = 0.0,
    since: datetime | None = None,
) -> FeedbackDataset:
    return build_dataset(
        SEED,
        logs,
        eval_existing=eval_existing or [],
        eval_seed=eval_seed if eval_seed is not None else [],
        eval_share=share,
        policy=policy or TrustPolicy(trust_customers=True, customer_min_confidence=0.8),
        since=since,
    )


def labels_of(dataset: FeedbackDataset) -> dict[str, str]:
    return {example.text: example.label for example in dataset.train}


def test_seed_alone_is_the_training_set() -> None:
    dataset = build([])
    assert set(dataset.train) == set(SEED)
    assert dataset.provenance["train_seed"] == len(SEED)
    assert dataset.new_intents == [] and dataset.intent_answers == {}
    assert dataset.labels == ["out_of_scope", "pricing", "reset_password"]


def test_agent_corrections_and_confirmations_become_labels() -> None:
    dataset = build(
        [
            rated("Can I get an invoice?", ("agent", False, "billing_invoice", 1), written="Invoices are in Billing."),
            rated("How much is the team plan?", ("agent", True, None, 2), intent="pricing"),
            rated("Who won the match?", ("agent", False, "out_of_scope", 3), intent="pricing"),
        ]
    )
    labels = labels_of(dataset)
    assert labels["Can I get an invoice?"] == "billing_invoice"
    assert labels["How much is the team plan?"] == "pricing"
    assert labels["Who won the match?"] == "out_of_scope"
    assert dataset.provenance["train_agent_correction"] == 2
    assert dataset.provenance["train_agent_confirmation"] == 1


def test_new_intent_grows_the_label_set_with_the_agents_answer() -> None:
    dataset = build(
        [
            rated("Do you offer student discounts?", ("agent", False, "student_discount", 1), written="Old text."),
            rated("Is there a student price?", ("agent", False, "student_discount", 5), written="Yes: 50% off."),
            rated("Who are you?", ("agent", False, "out_of_scope", 6), written=None),
        ]
    )
    assert dataset.new_intents == ["student_discount"]  # out_of_scope is never "new"
    assert "student_discount" in dataset.labels
    assert dataset.intent_answers == {"student_discount": "Yes: 50% off."}  # the latest written answer
    assert [a.question for a in dataset.written_answers] == [
        "Do you offer student discounts?",
        "Is there a student price?",
    ]
    assert dataset.intents_without_answer == []


def test_written_answers_keep_the_latest_per_question_with_a_stable_key() -> None:
    logs = [
        rated("Can I pay by invoice?", ("agent", False, None, 1), written="First draft."),
        rated("can I pay  by invoice?", ("agent", False, None, 9), written="Yes, on the Business plan."),
    ]
    first = build(logs).written_answers
    assert [(a.answer, a.question) for a in first] == [("Yes, on the Business plan.", "can I pay by invoice?")]
    assert first[0].key == build(list(reversed(logs))).written_answers[0].key


def test_dedupe_on_normalised_text() -> None:
    dataset = build(
        [
            rated("  How much is   the TEAM plan? ", ("agent", True, None, 1)),
            rated("how much is the team plan?", ("agent", True, None, 2)),
            rated("HOW DO I RESET MY PASSWORD", ("agent", True, None, 3), intent="reset_password"),  # seed text
        ]
    )
    keys = [text_key(example.text) for example in dataset.train]
    assert len(keys) == len(set(keys))
    assert len(dataset.train) == len(SEED) + 1


def test_latest_agent_decision_wins() -> None:
    dataset = build(
        [
            rated("I was charged twice", ("agent", False, "refund", 1), ("agent", False, "billing_error", 30)),
            rated("i was charged twice", ("agent", False, "refund", 10)),  # older than the 30-minute decision
            # later agent confirmation of another answer overrides an earlier correction
            rated("cancel my plan", ("agent", False, "pricing", 1), intent="cancel_plan"),
            rated("Cancel my plan", ("agent", True, None, 20), intent="cancel_plan"),
        ]
    )
    labels = {text_key(t): label for t, label in labels_of(dataset).items()}
    assert labels[text_key("I was charged twice")] == "billing_error"
    assert labels[text_key("cancel my plan")] == "cancel_plan"
    assert dataset.provenance["conflicts"] == 2


def test_a_later_agent_correction_beats_the_seed_and_agents_beat_customers() -> None:
    dataset = build(
        [
            rated("what are your prices", ("agent", False, "billing_invoice", 5)),  # seed text, relabelled
            rated("Where is my invoice?", ("customer", True, None, 50), ("agent", False, "billing_invoice", 1)),
        ]
    )
    labels = labels_of(dataset)
    assert labels["what are your prices"] == "billing_invoice"
    assert labels["Where is my invoice?"] == "billing_invoice"  # the later customer rating does not win


def test_customers_do_not_beat_the_seed() -> None:
    dataset = build([rated("price list please", ("customer", True, None, 1), intent="reset_password")])
    assert labels_of(dataset)["price list please"] == "pricing"


@pytest.mark.parametrize(
    ("policy", "confidence", "helpful", "expected"),
    [
        (TrustPolicy(True, 0.8), 0.95, True, "pricing"),
        (TrustPolicy(True, 0.8), 0.80, True, "pricing"),  # at the threshold
        (TrustPolicy(True, 0.8), 0.79, True, None),  # below it
        (TrustPolicy(False, 0.0), 0.99, True, None),  # customers not trusted at all
        (TrustPolicy(True, 0.0), 0.99, False, None),  # unhelpful never labels
    ],
)
def test_customer_trust_policy(policy: TrustPolicy, confidence: float, helpful: bool, expected: str | None) -> None:
    dataset = build(
        [rated("Is the pro plan worth it?", ("customer", helpful, None, 1), confidence=confidence)], policy=policy
    )
    assert labels_of(dataset).get("Is the pro plan worth it?") == expected


def test_customer_helpful_on_a_retrieval_answer_gives_no_label() -> None:
    found, ignored = observations(
        [rated("Where do I find the API docs?", ("customer", True, None, 1), source="retrieval")], TrustPolicy()
    )
    assert found == [] and ignored == {"customer_not_intent_answer": 1}


def test_agent_unhelpful_without_correction_vetoes_the_predicted_label() -> None:
    dataset = build(
        [
            rated("Do I get a refund?", ("customer", True, None, 1), ("agent", False, None, 5)),  # veto 'pricing'
            rated("price list please", ("agent", False, None, 5)),  # vetoes the seed label too
            rated("What is the price of storage?", ("agent", False, "pricing", 1), ("agent", False, None, 9)),
        ]
    )
    labels = labels_of(dataset)
    assert "Do I get a refund?" not in labels
    assert "price list please" not in labels
    assert "What is the price of storage?" not in labels
    assert dataset.provenance["vetoed"] == 2


def test_new_agent_examples_are_held_out_by_text_hash_and_never_trained_on() -> None:
    questions = [f"question number {n} about invoices" for n in range(40)]
    logs = [rated(q, ("agent", False, "billing_invoice", n)) for n, q in enumerate(questions)]
    first = build(logs, share=0.3)
    held = {text for text, _, origin in first.new_eval if origin == "log"}
    assert held == {q for q in questions if holdout_fraction(q) < 0.3}
    assert 5 <= len(held) <= 20
    assert not held & {example.text for example in first.train}

    # Next run: the store holds the eval rows; they stay out of training even with share 0.
    stored = [EvalExample(text_key=text_key(t), text=t, label=lab, origin=o) for t, lab, o in first.new_eval]
    second = build(logs, share=0.0, eval_existing=stored, since=T0 + timedelta(days=1))
    assert second.new_eval == []
    assert not held & {example.text for example in second.train}
    assert {example.text for example in second.eval} == held
    assert second.provenance["excluded_as_eval"] == len(held)


def test_a_full_width_variant_of_an_evaluation_question_is_not_trained_on() -> None:
    # The store keys the evaluation set with storage.text.text_key (NFKC); training must use the same key.
    stored = [EvalExample(text_key=store_key("Can I pay by invoice?"), text="Can I pay by invoice?", label="billing")]
    variants = ["Ｃａｎ Ｉ ｐａｙ ｂｙ ｉｎｖｏｉｃｅ？", "can i  pay by INVOICE?", "Can I pay by ｉｎｖｏｉｃｅ?"]
    logs = [rated(text, ("agent", False, "billing", n)) for n, text in enumerate(variants)]
    seed_variant = Example("Ｃａｎ Ｉ ｐａｙ ｂｙ ｉｎｖｏｉｃｅ？", "billing")
    dataset = build_dataset(
        [*SEED, seed_variant],
        logs,
        eval_existing=stored,
        eval_seed=[],
        eval_share=0.0,
        policy=TrustPolicy(),
    )
    assert all(store_key(example.text) != store_key("Can I pay by invoice?") for example in dataset.train)
    assert "billing" not in dataset.labels
    assert dataset.provenance["excluded_as_eval"] == 1
    assert text_key is store_key  # one definition of "the same text"
    assert holdout_fraction("Ｃａｎ Ｉ ｐａｙ ｂｙ ｉｎｖｏｉｃｅ？") == holdout_fraction("can i pay by invoice?")


def test_holdout_only_takes_questions_first_seen_since_the_last_run() -> None:
    old = [rated(f"old invoice question {n}", ("agent", False, "billing_invoice", n)) for n in range(30)]
    new = [rated(f"new invoice question {n}", ("agent", False, "billing_invoice", 120 + n)) for n in range(30)]
    dataset = build(old + new, share=0.5, since=T0 + timedelta(minutes=60))
    held = [text for text, _, _ in dataset.new_eval]
    assert held and all(text.startswith("new") for text in held)


def test_holdout_keeps_enough_training_examples_of_each_label() -> None:
    logs = [rated(f"student discount question {n}", ("agent", False, "student_discount", n)) for n in range(3)]
    dataset = build(logs, share=0.99)
    assert sum(1 for example in dataset.train if example.label == "student_discount") == 2


def test_seed_test_split_and_seed_holdout() -> None:
    test_split = [Example("what does the pro plan cost", "pricing")]
    with_file = build([], eval_seed=test_split)
    assert with_file.new_eval == [("what does the pro plan cost", "pricing", "seed")]
    assert set(with_file.train) == set(SEED)

    without_file = build_dataset(
        SEED, [], eval_existing=[], eval_seed=None, eval_share=0.5, policy=TrustPolicy(), since=None
    )
    held = {text for text, _, origin in without_file.new_eval if origin == "seed"}
    assert held and held <= {e.text for e in SEED if holdout_fraction(e.text) < 0.5}
    assert all(sum(1 for e in without_file.train if e.label == label) >= 2 for label in without_file.labels)
    stored = [EvalExample(text_key=text_key(t), text=t, label=lab, origin=o) for t, lab, o in without_file.new_eval]
    again = build_dataset(
        SEED, [], eval_existing=stored, eval_seed=None, eval_share=0.5, policy=TrustPolicy(), since=None
    )
    assert again.new_eval == [] and again.hash == without_file.hash


def test_dataset_hash_changes_with_the_labels() -> None:
    assert build([]).hash == build([]).hash
    assert build([rated("what are your prices", ("agent", False, "billing_invoice", 5))]).hash != build([]).hash


def test_eval_share_is_checked() -> None:
    with pytest.raises(ValueError, match="eval_share"):
        build([], share=1.0)


def clarified(question: str, picked: str | None, minute: int = 1) -> RatedAnswer:
    """A clarifying question whose customer picked `picked` (None: "Something else")."""
    item = rated(question, ("customer", picked is not None, picked, minute), intent="pricing", source="clarify")
    item.ratings[0].source = "clarify"
    return item


def test_a_customer_pick_in_a_clarifying_question_is_a_label() -> None:
    logs = [clarified("is the team plan cheaper?", "pricing"), clarified("no idea what I want", None)]
    dataset = build(logs)
    assert labels_of(dataset)["is the team plan cheaper?"] == "pricing"
    assert "no idea what I want" not in labels_of(dataset)
    assert dataset.provenance["train_customer"] == 1
    untrusted = build(logs, policy=TrustPolicy(trust_customers=False))
    assert "is the team plan cheaper?" not in labels_of(untrusted)
    assert untrusted.provenance["ignored_customer_untrusted"] == 1


def test_agent_out_of_scope_labels_calibrate_and_measure_the_share() -> None:
    questions = [f"off topic question number {n}" for n in range(40)]
    logs = [rated(q, ("agent", False, "out_of_scope", n)) for n, q in enumerate(questions)]
    logs += [rated(f"how much is plan {n}", ("agent", True, None, 50 + n), intent="pricing") for n in range(20)]
    dataset = build(logs)
    held = set(dataset.calibration_oos)
    trained = {ex.text for ex in dataset.train if ex.label == "out_of_scope"}
    assert held and trained - {ex.text for ex in SEED}  # both halves are used
    assert not held & trained and held | trained >= set(questions)
    assert len(held) == pytest.approx(20, abs=8)  # CALIBRATION_SHARE of them, by text hash
    assert held == set(build(logs).calibration_oos)  # stable
    assert dataset.oos_share == pytest.approx(40 / 60)
    assert dataset.provenance["calibration_oos"] == len(held)
    assert build(logs[:30]).oos_share is None  # fewer than MIN_LABELLED_FOR_SHARE labels: OOS_SHARE applies


def test_the_measured_share_stays_usable_when_agents_only_mark_out_of_scope() -> None:
    logs = [rated(f"nothing we sell {n}", ("agent", False, "out_of_scope", n)) for n in range(60)]
    assert build(logs).oos_share == 0.9  # clamped: a share of 1 would make the bot hand off everything
