"""Fixtures for the engine, versions, runtime and `ask`/`chat` tests: a tiny intents file, a tiny knowledge base,
and one tiny model version trained once per test session (4 intents x 8 examples + out-of-scope, 3 epochs,
max_length 32), shared by every test that needs a real model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalog import IntentCatalog
from bot.settings import bundled_base_model
from bot.versions import build_version
from retrieval.documents import Document
from retrieval.ingest import load_documents
from training.data import Example, load_examples
from training.train import TrainingConfig

TINY_INTENTS = """\
company: Tiny Co
intents:
  - name: reset_password
    description: Cannot log in / wants a new password
    answer: "To reset your password, open the sign-in page and choose *Forgot password*."
    sources: [accounts/reset-password.md]
    examples:
      - How do I reset my password?
      - I forgot my password
      - I can't remember my password
      - reset my password please
      - my password doesn't work anymore
      - how can I change my forgotten password
      - locked out, need a new password
      - password reset link
  - name: refund
    description: Wants money back
    answer: "We refund any payment made in the last 30 days: reply with your invoice number."
    sources: [billing/refund-policy.md]
    examples:
      - I want a refund
      - can I get my money back
      - please refund my last payment
      - how do refunds work
      - I was charged twice, refund me
      - refund for my subscription
      - give me my money back
      - request a refund
  - name: upload_limit
    description: Asks about the maximum file size
    answer: "You can upload files of up to 50 GB each."
    examples:
      - what is the maximum file size
      - how big can my uploads be
      - file too large to upload
      - upload size limit
      - can I upload a 10 GB video
      - is there a limit on file size
      - my big file will not upload
      - largest file I can upload
  - name: cancel_plan
    description: Wants to cancel the subscription
    answer: "Cancel any time under Settings > Plan > Cancel plan."
    examples:
      - how do I cancel my plan
      - cancel my subscription
      - I want to stop paying
      - end my subscription
      - close my paid plan
      - stop my membership
      - I don't want the plan anymore
      - unsubscribe me from the paid plan
out_of_scope:
  - where are your offices
  - which country is your company based in
  - what's the weather tomorrow
  - tell me a joke
  - who won the football game
  - recommend a good pizza place
  - what is the meaning of life
  - how tall is mount everest
"""

KB_FILES = {
    "accounts/reset-password.md": "# Reset your password\n\nOpen the sign-in page and choose Forgot password. "
    "We e-mail you a link that works for one hour.\n",
    "billing/refund-policy.md": "# Refund policy\n\nPayments made in the last 30 days are refunded in full to the "
    "original card within five working days.\n",
    "security/data-residency.md": "# Where your data is stored\n\nAll files are stored in our data centres in "
    "Frankfurt, Germany, and never leave the European Union. Backups are kept in Dublin, Ireland.\n",
}


def tiny_examples(path: Path) -> tuple[list[Example], list[Example]]:
    """(train, validation): 6 examples of each intent and 4 out-of-scope rows to train, the rest to validate."""
    examples = load_examples(path)
    by_label: dict[str, list[Example]] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    train = [ex for rows in by_label.values() for ex in rows[:-2]]
    val = [ex for rows in by_label.values() for ex in rows[-2:]]
    return train, val


def tiny_config(**overrides: object) -> TrainingConfig:
    """The fastest config that still learns the tiny intents."""
    values: dict[str, object] = {
        "base_model": bundled_base_model(),
        "epochs": 3,
        "batch_size": 8,
        "max_length": 32,
        "lr": 2e-4,
        "head_lr": 1e-2,
        "label_smoothing": 0.0,
        "device": "cpu",
        "patience": 0,
        "calibration_twin": False,  # the faster calibration (the twin is tested in tests/training)
    }
    values.update(overrides)
    return TrainingConfig(**values)  # type: ignore[arg-type]


def write_tiny_kb(root: Path) -> Path:
    for rel, text in KB_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(intents YAML, knowledge-base folder) of the tiny support team."""
    root = tmp_path_factory.mktemp("tiny")
    intents = root / "intents.yaml"
    intents.write_text(TINY_INTENTS, encoding="utf-8")
    return intents, write_tiny_kb(root / "kb")


@pytest.fixture(scope="session")
def tiny_catalog(tiny_files: tuple[Path, Path]) -> IntentCatalog:
    return IntentCatalog.load(tiny_files[0])


@pytest.fixture(scope="session")
def tiny_documents(tiny_files: tuple[Path, Path]) -> list[Document]:
    return load_documents(tiny_files[1])


@pytest.fixture(scope="session")
def tiny_version(
    tmp_path_factory: pytest.TempPathFactory, tiny_files: tuple[Path, Path], tiny_documents: list[Document]
) -> Path:
    """One complete model version (model + index) trained on the tiny intents; treat it as read-only."""
    train, val = tiny_examples(tiny_files[0])
    models_dir = tmp_path_factory.mktemp("models")
    return build_version(
        models_dir,
        "v20260101-000000",
        train_examples=train,
        val_examples=val,
        training_config=tiny_config(),
        kb_documents=tiny_documents,
        progress=False,
    )
