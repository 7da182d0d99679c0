"""The nightly job end to end on a tiny support team: a simulated week of feedback, the gate, failures, rollback.

One module-scoped scenario trains the real (tiny) models once and records what happened; the tests assert on it:

* day 0: the first `retrain` (no production yet) trains and promotes v1, which serves day 1's conversations
  (logged through the Repository on SQLite); agents correct answers: a brand-new intent with an agent-written
  answer, a second one from only three corrections (known after one night), questions relabelled out of scope,
  and deliberately conflicting labels (the latest decision must win);
  customers rate some answers;
* night 1: the trainer raises, the disk fills up (ENOSPC while writing), the candidate directory is corrupt:
  each run fails cleanly, production stays v1; then the job runs normally and promotes v2;
* later: a sabotaged candidate (trained on shuffled labels) is rejected; `supportbot model rollback` restores v1.

Runtime budget: three tiny trainings (5 intents x 8 examples + out-of-scope, max_length 32, 1-2 epochs); the
tests that use the scenario are marked slow. The Slack summary is tested against a local HTTP stub.
"""

from __future__ import annotations

import errno
import json
import random
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml
from filelock import FileLock
from typer.testing import CliRunner

from bot.cli import app
from bot.retrain import EXIT_LOCKED, LOCK_FILE, RetrainError, RetrainLocked, RetrainResult, post_summary, retrain
from bot.runtime import ModelHolder, build_engine
from bot.settings import Settings
from bot.versions import build_version
from storage.models import TrainingRun
from storage.repository import Repository
from tests.factories import Answered, answered_question, correct, new_thread, rate, settings_for
from training.data import Example
from training.train import TrainingConfig

TRAINING = {"epochs": 2, "batch_size": 8, "max_length": 32, "lr": 1e-4, "device": "cpu", "patience": 0}

INTENTS = {
    "reset_password": (
        "To reset your password, open Settings > Security > Reset password.",
        [
            "How do I reset my password?",
            "I forgot my password",
            "Can't log in, need a new password",
            "password reset please",
            "I lost my password, help",
            "how to change a forgotten password",
            "reset my login password",
            "my password does not work anymore",
        ],
    ),
    "cancel_subscription": (
        "You can cancel any time under Billing > Plan > Cancel.",
        [
            "How do I cancel my subscription?",
            "I want to stop my plan",
            "cancel my account subscription",
            "please end my membership",
            "how can I unsubscribe from the paid plan",
            "stop billing me monthly",
            "I'd like to cancel",
            "terminate my subscription",
        ],
    ),
    "shipping_status": (
        "Track your order under Orders > Track shipment.",
        [
            "Where is my order?",
            "my package has not arrived",
            "track my shipment",
            "when will my order be delivered",
            "order status please",
            "has my parcel shipped yet",
            "delivery is late",
            "where's my delivery",
        ],
    ),
    "refund_request": (
        "Refunds go back to your card within 5 business days; request one under Orders > Refund.",
        [
            "I want a refund",
            "can I get my money back",
            "refund my last order",
            "how do I request a refund",
            "return money for a broken item",
            "please reimburse me",
            "I need a refund for my purchase",
            "money back for the order",
        ],
    ),
    "change_email": (
        "Change your e-mail address under Settings > Profile > E-mail.",
        [
            "How do I change my email?",
            "update my email address",
            "I have a new email address",
            "change the e-mail on my account",
            "switch my login email",
            "edit my contact email",
            "my email changed, update it",
            "use a different email for my account",
        ],
    ),
}
OUT_OF_SCOPE = [
    "What's the weather tomorrow?",
    "tell me a joke",
    "who won the football game",
    "what is the capital of France",
    "recommend a good movie",
    "how tall is mount everest",
]
TEST_SPLIT = [
    ("I need to reset my password", "reset_password"),
    ("forgot password, what now", "reset_password"),
    ("cancel the subscription now", "cancel_subscription"),
    ("I want to quit my plan", "cancel_subscription"),
    ("where is my package", "shipping_status"),
    ("track the order I placed", "shipping_status"),
    ("give me a refund", "refund_request"),
    ("I'd like my money back", "refund_request"),
    ("change email address", "change_email"),
    ("new email for my account", "change_email"),
    ("what's a good pizza recipe", "out_of_scope"),
    ("sing me a song", "out_of_scope"),
]
KB = {
    "security.md": "# Account security\n\nUse two-step verification. Reset your password under Settings > Security.\n",
    "billing.md": "# Billing\n\nPlans renew monthly. Cancel under Billing > Plan. Refunds take 5 business days.\n",
    "shipping.md": "# Shipping\n\nOrders ship within 2 days. Track them under Orders > Track shipment.\n",
}

STUDENT_ANSWER = "Students get 50% off every plan: sign up with your university e-mail address."
STUDENT_QUESTIONS = [
    "Do you have a student discount?",
    "Is there a cheaper plan for students?",
    "student pricing?",
    "discount for university students",
    "I'm a student, any deals?",
    "do students get a reduced price",
    "how much is it for students",
    "any education discount for students",
]
GIFT_ANSWER = "Gift cards are sold under Billing > Gift cards; they never expire."
GIFT_QUESTIONS = [  # a second brand-new intent, from only three corrections
    "can I buy a gift card?",
    "do you sell gift vouchers",
    "I want to give a gift card to a friend",
]
DAY1_QUESTIONS = {  # question -> what the agents say it is
    "my order never came": "shipping_status",
    "the parcel is lost in the mail": "shipping_status",
    "charge me less, I'm quitting": "cancel_subscription",
    "stop my recurring payments": "cancel_subscription",
    "send the money back to my card": "refund_request",
    "I got billed for something I returned": "refund_request",
    "I can't sign in anymore": "reset_password",
    "login code not accepted, reset please": "reset_password",
    "my address for emails is outdated": "change_email",
    "put my work email on the account": "change_email",
    "write my history essay for me": "out_of_scope",
    "what's your favourite colour": "out_of_scope",
}
# The same question corrected twice: the LATER decision must win (questions asked in two conversations).
CONFLICTS = [
    ("my box arrived smashed, I want my money", "cancel_subscription", "refund_request"),
    ("is my parcel stuck at customs", "refund_request", "shipping_status"),
]


def write_world(root: Path) -> dict[str, Path]:
    """The tiny team's intents file, seed test split and knowledge base."""
    root.mkdir(parents=True, exist_ok=True)
    spec = {
        "company": "Acme",
        "intents": [{"name": n, "answer": a, "examples": ex} for n, (a, ex) in INTENTS.items()],
        "out_of_scope": OUT_OF_SCOPE,
    }
    (root / "intents.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    rows = ["text,label"] + [f'"{text}",{label}' for text, label in TEST_SPLIT]
    (root / "test.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    kb = root / "kb"
    kb.mkdir(exist_ok=True)
    for name, text in KB.items():
        (kb / name).write_text(text, encoding="utf-8")
    return {"intents": root / "intents.yaml", "eval": root / "test.csv", "kb": kb}


def make_settings(root: Path, world: Mapping[str, Path], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "intents_file": world["intents"],
        "kb_dir": world["kb"],
        "eval_file": world["eval"],
        "calibration_twin": False,  # the faster calibration (the twin is tested in tests/training)
        "torch_threads": 2,
        "retrain_eval_share": 0.2,
        "retrain_post_summary": False,
        "keep_model_versions": 5,
    }
    values.update(overrides)
    return settings_for(root / "data", **values)


def run(settings: Settings, **kwargs: Any) -> RetrainResult:
    kwargs.setdefault("training", TRAINING)
    return retrain(settings, progress=False, **kwargs)


def holder_for(settings: Settings, repo: Repository) -> ModelHolder:
    """The running bot's engine: serves the registry's production version, reloads when it changes."""
    return build_engine(settings, repo, bootstrap=False, watch=False)


def converse(repo: Repository, engine: ModelHolder, question: str) -> Answered:
    """One customer question answered by the engine and logged, as the Slack front end does."""
    return answered_question(repo, question, engine.answer(question), thread=new_thread(channel_id="CSUPPORT"))


def agent_verdict(repo: Repository, logged: Answered, truth: str, written: str | None = None) -> None:
    """An agent confirms a right answer or corrects a wrong one (with an answer of their own, optionally)."""
    if logged.intent == truth and written is None:
        rate(repo, logged.answer_id, rater_id="UAGENT", rater_role="agent")
    else:
        correct(repo, logged.answer_id, truth, answer=written)


# --- the scenario -----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    root: Path
    settings: Settings
    snapshot: Path
    v1: str
    v2: str
    night: RetrainResult
    failures: list[tuple[str, str, str | None, list[str]]] = field(default_factory=list)
    """(what failed, error message, production after, version directories after)."""
    corrected: dict[str, str] = field(default_factory=dict)
    runs: list[TrainingRun] = field(default_factory=list)
    reloaded: bool = False
    """Whether the bot that served day 1 (v1) switched when v2 was promoted."""
    served_after_reload: str | None = None


def version_dirs(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.models_dir.iterdir()) if settings.models_dir.exists() else []


def failing_trainer(*args: Any, **kwargs: Any) -> Path:
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def disk_full(models_dir: str | Path, version: str, **kwargs: Any) -> Path:
    """Writes half a version, then the disk is full."""
    target = Path(models_dir) / version
    (target / "model").mkdir(parents=True)
    (target / "model" / "model.safetensors").write_bytes(b"\0" * 1024)
    raise OSError(errno.ENOSPC, "No space left on device")


def corrupt_candidate(source: Path) -> Any:
    """A 'trainer' that produces a complete-looking version whose weights are garbage."""

    def build(models_dir: str | Path, version: str, **kwargs: Any) -> Path:
        target = Path(models_dir) / version
        shutil.copytree(source, target)
        weights = target / "model" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:4096])
        return target

    return build


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("week")
    world = write_world(root / "world")
    settings = make_settings(root, world)

    # Day 0: nothing in production; the first run trains the seed model and promotes it.
    first = run(settings)
    assert first.status == "promoted" and first.previous is None
    v1 = first.version
    assert v1 is not None

    # Day 1: v1 serves customers; agents review the answers.
    corrected: dict[str, str] = {}
    bot_repo = Repository(settings.db_url)
    bot = holder_for(settings, bot_repo)
    assert bot.version == v1
    with Repository(settings.db_url) as repo:
        engine = bot
        for number, question in enumerate(STUDENT_QUESTIONS):
            logged = converse(repo, engine, question)
            agent_verdict(repo, logged, "student_discount", STUDENT_ANSWER if number % 3 == 0 else None)
            corrected[question] = "student_discount"
        for number, question in enumerate(GIFT_QUESTIONS):
            agent_verdict(repo, converse(repo, engine, question), "gift_card", GIFT_ANSWER if number == 0 else None)
            corrected[question] = "gift_card"
        for question, truth in DAY1_QUESTIONS.items():
            agent_verdict(repo, converse(repo, engine, question), truth)
            corrected[question] = truth
        for question, first_label, final_label in CONFLICTS:
            agent_verdict(repo, converse(repo, engine, question), first_label)
            time.sleep(0.01)
            agent_verdict(repo, converse(repo, engine, question.capitalize() + " "), final_label)
            corrected[question] = final_label
        for question in ("I forgot my password", "where is my order?"):  # customers are happy with these
            logged = converse(repo, engine, question)
            rate(repo, logged.answer_id, rater_id="UCUSTOMER", rater_role="customer")

    # Night 1: three failed attempts, each leaving production alone, then a normal run.
    failures = []
    v1_dir = settings.models_dir / v1
    for what, build in [
        ("trainer raises", failing_trainer),
        ("disk full", disk_full),
        ("corrupt candidate", corrupt_candidate(v1_dir)),
    ]:
        with pytest.raises(RetrainError) as info:
            run(settings, build=build)
        with Repository(settings.db_url) as repo:
            production = repo.production_model()
        failures.append((what, str(info.value), production.version if production else None, version_dirs(settings)))
    night = run(settings)
    assert night.status == "promoted", night.message
    assert night.version is not None
    reloaded = bot.maybe_reload()
    served = bot.answer("are there discounts for students?").model_version
    bot.close()
    bot_repo.close()

    with Repository(settings.db_url) as repo:
        runs = repo.training_runs()
    snapshot = root / "snapshot"
    shutil.copytree(settings.data_dir, snapshot)
    yield Scenario(root, settings, snapshot, v1, night.version, night, failures, corrected, runs, reloaded, served)


@pytest.fixture
def after_night(scenario: Scenario) -> Scenario:
    """The scenario's data dir restored to its state after night 1 (same paths, so the registry is valid)."""
    shutil.rmtree(scenario.settings.data_dir)
    shutil.copytree(scenario.snapshot, scenario.settings.data_dir)
    return scenario


# --- night 1: failures ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_failed_runs_leave_production_untouched_and_the_next_run_succeeds(scenario: Scenario) -> None:
    assert [what for what, *_ in scenario.failures] == ["trainer raises", "disk full", "corrupt candidate"]
    for what, message, production, dirs in scenario.failures:
        assert production == scenario.v1, what
        assert dirs == [scenario.v1], what  # the failed candidate's directory is gone
        assert "\n" not in message and message.startswith("retrain failed, production unchanged"), what
    assert "illegal memory access" in scenario.failures[0][1]
    assert "no space left on the device" in scenario.failures[1][1]
    statuses = [run.status for run in reversed(scenario.runs)]
    assert statuses == ["promoted", "failed", "failed", "failed", "promoted"]
    failed = [run for run in scenario.runs if run.status == "failed"]
    assert all(run.error and run.finished_at for run in failed)
    assert scenario.night.previous == scenario.v1 and scenario.night.production == scenario.v2


# --- night 1: what was learnt -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_week_of_corrections_is_learnt(after_night: Scenario) -> None:
    settings = after_night.settings
    provenance = after_night.night.metrics["provenance"]
    assert sorted(after_night.night.metrics["new_intents"]) == ["gift_card", "student_discount"]
    assert provenance["conflicts"] >= len(CONFLICTS)
    assert provenance["train_agent_correction"] + provenance["train_agent_confirmation"] > 10

    assert after_night.reloaded and after_night.served_after_reload == after_night.v2
    with Repository(settings.db_url) as repo:
        eval_rows = repo.eval_examples()
        engine = holder_for(settings, repo).engine
    eval_texts = {row.text.casefold() for row in eval_rows}
    held_out = [row for row in eval_rows if row.origin == "log"]  # set aside by the first (failed) run
    assert held_out and all(after_night.corrected.get(row.text) == row.label for row in held_out)
    assert provenance["excluded_as_eval"] >= len(held_out)
    assert engine.version == after_night.v2
    assert "student_discount" in engine.intents
    trained = {q: label for q, label in after_night.corrected.items() if q.casefold() not in eval_texts}
    predictions = engine.model.predict(list(trained))
    wrong = {
        q: (p.label, label) for (q, label), p in zip(trained.items(), predictions, strict=True) if p.label != label
    }
    assert len(wrong) <= 1, wrong
    for question, _, final_label in CONFLICTS:  # the latest agent decision won
        if question.casefold() not in eval_texts:
            assert engine.model.predict_one(question).label == final_label

    answer = engine.answer("are there discounts for students?")
    assert answer.intent == "student_discount"
    assert answer.source == "intent" and answer.text == STUDENT_ANSWER
    # three corrections are enough: after one night (candidate promoted) the new intent is known and answered
    assert "gift_card" in engine.intents
    trained_gift = [q for q in GIFT_QUESTIONS if q.casefold() not in eval_texts]
    assert trained_gift and all(p.label == "gift_card" for p in engine.model.predict(trained_gift))

    report = after_night.night.report_path
    assert report is not None and report.is_file()
    assert "student_discount" in report.read_text() and (report.parent / "f1_per_intent.png").is_file()


@pytest.mark.slow
def test_nothing_to_do_when_nothing_changed(after_night: Scenario) -> None:
    again = run(after_night.settings)
    assert again.status == "nothing_to_do" and again.production == after_night.v2
    assert "nothing to do" in again.message


# --- the gate ---------------------------------------------------------------------------------------------


def shuffled_labels(models_dir: str | Path, version: str, *, train_examples: Sequence[Example], **kwargs: Any) -> Path:
    labels = [example.label for example in train_examples]
    random.Random(7).shuffle(labels)
    sabotaged = [Example(e.text, label) for e, label in zip(train_examples, labels, strict=True)]
    config: TrainingConfig = kwargs.pop("training_config")
    return build_version(
        models_dir,
        version,
        train_examples=sabotaged,
        training_config=replace(config, init_from=None, epochs=1),
        **kwargs,
    )


@pytest.mark.slow
def test_a_sabotaged_candidate_is_rejected_and_old_versions_are_pruned(after_night: Scenario) -> None:
    settings = after_night.settings.model_copy(update={"keep_model_versions": 1})
    for old in ("v20000101-000000", "v20000102-000000"):  # older versions on disk, long retired
        shutil.copytree(settings.models_dir / after_night.v1, settings.models_dir / old)
    result = run(settings, force=True, build=shuffled_labels)
    assert result.status == "rejected", result.message
    assert result.production == after_night.v2
    assert result.decision is not None and not result.decision.promote
    assert any(
        reason.startswith("regression overall") or "significantly worse" in reason for reason in result.decision.reasons
    ), result.decision.reasons
    with Repository(settings.db_url) as repo:
        production = repo.production_model()
        candidate = repo.get_model(result.version or "")
        last = repo.training_runs(limit=1)[0]
    assert production is not None and production.version == after_night.v2
    assert candidate is not None and candidate.status == "rejected"
    assert last.status == "rejected" and last.report_path and "REJECTED" in Path(last.report_path).read_text()
    # keep 1 (the newest: the rejected candidate), but never production (v2) or the rollback target (v1)
    assert version_dirs(settings) == sorted([after_night.v1, after_night.v2, result.version or ""])


# --- rollback ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_rollback_restores_the_previous_version(after_night: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = after_night.settings
    monkeypatch.setattr("bot.cli.common.settings", lambda: settings)
    monkeypatch.setattr("bot.cli.registry.settings", lambda: settings)
    with Repository(settings.db_url) as repo, holder_for(settings, repo) as bot:
        assert bot.version == after_night.v2
        result = CliRunner().invoke(app, ["model", "rollback"])
        assert result.exit_code == 0, result.output
        assert f"production is now {after_night.v1} (was {after_night.v2})" in result.output
        assert bot.maybe_reload()
        assert bot.version == after_night.v1
        assert "student_discount" not in bot.intents
        assert bot.answer("I forgot my password").model_version == after_night.v1
        models = {m.version: m.status for m in repo.models()}
    assert models[after_night.v1] == "production" and models[after_night.v2] == "retired"


# --- the lock ---------------------------------------------------------------------------------------------


@contextmanager
def lock_held_by_another_run(settings: Settings, seconds: float = 30.0) -> Iterator[None]:
    """Another 'run' (a thread, as another process would) holds the job's lock for up to `seconds`."""
    acquired, release = threading.Event(), threading.Event()

    def hold() -> None:
        with FileLock(str(settings.data_dir / LOCK_FILE)):
            acquired.set()
            release.wait(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    assert acquired.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


@pytest.mark.slow
def test_a_second_run_exits_cleanly_or_waits(after_night: Scenario) -> None:
    settings = after_night.settings
    with lock_held_by_another_run(settings):
        started = time.perf_counter()
        with pytest.raises(RetrainLocked, match="another retrain is running"):
            run(settings)
        assert time.perf_counter() - started < 5
    with lock_held_by_another_run(settings, seconds=0.5):
        started = time.perf_counter()
        waited = run(settings, wait=True)
        assert time.perf_counter() - started >= 0.3
    assert waited.status == "nothing_to_do"


@pytest.mark.slow
def test_the_cli_exit_code_when_locked(after_night: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = after_night.settings
    monkeypatch.setattr("bot.cli.retrain.settings", lambda: settings)
    with lock_held_by_another_run(settings):
        result = CliRunner().invoke(app, ["retrain", "--quiet"])
    assert result.exit_code == EXIT_LOCKED
    assert "another retrain is running" in result.output


# --- the Slack summary --------------------------------------------------------------------------------------


class _SlackStub(BaseHTTPRequestHandler):
    calls: list[tuple[str, dict[str, Any]]] = []
    reply: dict[str, Any] = {"ok": True}

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = {key: values[0] for key, values in parse_qs(body).items()}
        payload = json.loads(body) if body.startswith("{") else form
        type(self).calls.append((self.path, payload | {"auth": self.headers.get("Authorization")}))
        data = json.dumps(type(self).reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slack_stub() -> Iterator[tuple[str, type[_SlackStub]]]:
    _SlackStub.calls = []
    _SlackStub.reply = {"ok": True}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlackStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/", _SlackStub
    server.shutdown()
    server.server_close()


def summary_settings(tmp_path: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "retrain_post_summary": True,
        "slack_bot_token": "xoxb-test",
        "agent_channel_id": "CAGENTS",
        "slack_api_base_url": base_url,
    }
    return settings_for(tmp_path, **(values | overrides))


def test_the_summary_is_posted_to_the_agents_channel(tmp_path: Path, slack_stub: tuple[str, Any]) -> None:
    url, stub = slack_stub
    assert post_summary(summary_settings(tmp_path, url), "Nightly retraining: promoted v2")
    [(path, payload)] = stub.calls
    assert path == "/api/chat.postMessage"
    assert payload["channel"] == "CAGENTS" and payload["text"] == "Nightly retraining: promoted v2"
    assert payload["auth"] == "Bearer xoxb-test"


def test_a_failing_or_disabled_summary_never_fails_the_job(
    tmp_path: Path, slack_stub: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    url, stub = slack_stub
    stub.reply = {"ok": False, "error": "channel_not_found"}
    assert not post_summary(summary_settings(tmp_path, url), "x")
    assert "channel_not_found" in caplog.text
    assert not post_summary(summary_settings(tmp_path, "http://127.0.0.1:9/api/"), "x")  # nothing listens
    calls = len(stub.calls)
    assert not post_summary(summary_settings(tmp_path, url, retrain_post_summary=False), "x")
    assert not post_summary(summary_settings(tmp_path, url, agent_channel_id=""), "x")
    assert len(stub.calls) == calls


OFF_TOPIC_LOGS = [
    "can you recommend a good thriller novel",
    "how tall is the eiffel tower",
    "what's the score in the football",
    "translate good morning into italian",
    "is it going to snow this weekend",
    "how do I bake sourdough bread",
    "what's the best laptop for gaming",
    "who painted the mona lisa",
    "help me plan a trip to lisbon",
    "what time is it in tokyo",
]


@pytest.mark.slow
def test_nightly_recalibration_uses_agent_labelled_out_of_scope_questions(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, write_world(tmp_path / "world"))
    assert run(settings).status == "promoted"
    with Repository(settings.db_url) as repo:
        engine = holder_for(settings, repo)
        for question in OFF_TOPIC_LOGS:  # the agent marks each "out of scope" in the correction modal
            correct(repo, converse(repo, engine, question).answer_id, "out_of_scope", helpful=None)
        engine.close()
    seen: dict[str, Any] = {}

    def build(models_dir: str | Path, version: str, **kwargs: Any) -> Path:
        seen.update(kwargs)
        return build_version(models_dir, version, **kwargs)

    night = run(settings, build=build, force=True)
    held = list(seen["log_out_of_scope"])
    assert held and set(held) <= set(OFF_TOPIC_LOGS)
    assert not set(held) & {ex.text for ex in seen["train_examples"]}  # calibration only, never trained on
    assert night.metrics["provenance"]["calibration_oos"] == len(held)
    assert seen["policy"].oos_share == settings.oos_share  # too few agent labels to measure the share yet
    assert night.metrics["oos_share"]["origin"] == "OOS_SHARE"
    assert night.version is not None
    manifest = settings.models_dir / night.version / "model" / "supportbot.json"
    decision = json.loads(manifest.read_text())["decision"]
    assert decision["rows"]["log_oos"] == len(held)
    report = night.report_path
    assert report is not None and "Operating point" in report.read_text()
