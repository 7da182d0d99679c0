"""IntentCatalog: loading, lookups and every validation error."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalog import CatalogError, IntentCatalog, normalize_question
from bot.cli.common import USER_ERRORS
from training.data import load_examples
from training.errors import DataError

VALID = """\
company: Acme Cloud
intents:
  - name: reset_password
    description: "Customer cannot log in"
    answer: |
      Use *Forgot password?* on the sign-in page.
    sources: [accounts/reset-password.md]
    examples:
      - How do I reset my password?
      - forgot my password
  - name: cancel_subscription
    answer: Go to Settings > Billing > Cancel.
    examples:
      - cancel my plan
out_of_scope:
  - What's the weather tomorrow?
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "intents.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str | bytes) -> str:
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        IntentCatalog.load(path)
    message = str(info.value)
    assert str(path) in message, "the error must name the file"
    return message


def test_load_valid_catalog(tmp_path: Path) -> None:
    catalog = IntentCatalog.load(write(tmp_path, VALID))

    assert catalog.company == "Acme Cloud"
    assert catalog.intents == ["reset_password", "cancel_subscription"]
    assert catalog.answer_for("reset_password") == "Use *Forgot password?* on the sign-in page."
    assert catalog.sources_for("reset_password") == ["accounts/reset-password.md"]
    assert catalog.sources_for("cancel_subscription") == []
    assert catalog.out_of_scope_examples == ("What's the weather tomorrow?",)
    assert catalog.path == tmp_path / "intents.yaml"
    assert len(catalog) == 2
    assert "cancel_subscription" in catalog
    assert [intent.name for intent in catalog] == catalog.intents
    intent = catalog.get("reset_password")
    assert intent is not None
    assert intent.examples == ("How do I reset my password?", "forgot my password")


def test_unknown_intent_lookups(tmp_path: Path) -> None:
    catalog = IntentCatalog.load(write(tmp_path, VALID))

    assert catalog.answer_for("out_of_scope") is None
    assert catalog.sources_for("nope") == []
    assert catalog.get("nope") is None
    assert "out_of_scope" not in catalog


def test_describe_uses_description_then_humanised_name(tmp_path: Path) -> None:
    catalog = IntentCatalog.load(write(tmp_path, VALID))

    assert catalog.describe("reset_password") == "Customer cannot log in"
    assert catalog.describe("cancel_subscription") == "Cancel subscription"
    assert catalog.describe("retired_intent") == "Retired intent"


def test_sources_for_returns_a_copy(tmp_path: Path) -> None:
    catalog = IntentCatalog.load(write(tmp_path, VALID))
    catalog.sources_for("reset_password").append("x.md")
    assert catalog.sources_for("reset_password") == ["accounts/reset-password.md"]


def test_missing_sources(tmp_path: Path) -> None:
    catalog = IntentCatalog.load(write(tmp_path, VALID))
    kb = tmp_path / "kb"
    assert catalog.missing_sources(kb) == [("reset_password", "accounts/reset-password.md")]
    (kb / "accounts").mkdir(parents=True)
    (kb / "accounts" / "reset-password.md").write_text("# Reset\n", encoding="utf-8")
    assert catalog.missing_sources(kb) == []


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(CatalogError, match="absent.yaml not found"):
        IntentCatalog.load(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="is a directory"):
        IntentCatalog.load(tmp_path)


def edited(old: str, new: str) -> str:
    """VALID with one change (the change must apply: a table row that edits nothing would test nothing)."""
    assert old in VALID, old
    return VALID.replace(old, new)


CANCEL_ANSWER = "    answer: Go to Settings > Billing > Cancel.\n"
CANCEL_EXAMPLES = "    examples:\n      - cancel my plan\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(VALID.replace("Acme", "Acm\xe9").encode("latin-1"), ["not UTF-8", "0xe9"], id="not-utf8"),
        pytest.param("company: X\nintents: [\n  - name: a\n", ["not valid YAML", "line"], id="bad-yaml"),
        pytest.param("", ["expected a mapping"], id="top-level-empty"),
        pytest.param("- just\n- a list\n", ["expected a mapping"], id="top-level-list"),
        pytest.param("just a string\n", ["expected a mapping"], id="top-level-string"),
        pytest.param(
            edited("    answer: Go to Settings", "    answer: first\n    answer: Go to Settings"),
            ["duplicate key 'answer'"],
            id="duplicate-yaml-key",
        ),
        pytest.param(
            edited(CANCEL_ANSWER, ""), ["intents[1] (cancel_subscription).answer: missing"], id="missing-answer"
        ),
        pytest.param(
            edited(CANCEL_ANSWER, '    answer: "   "\n'),
            ["(cancel_subscription).answer: the answer is empty"],
            id="blank-answer",
        ),
        pytest.param(
            edited("name: cancel_subscription", "name: reset_password"),
            ["duplicate intent name 'reset_password'"],
            id="duplicate-intent-name",
        ),
        pytest.param(
            edited(CANCEL_EXAMPLES, "    examples: []\n"),
            ["(cancel_subscription).examples: no examples"],
            id="empty-examples",
        ),
        pytest.param(edited(CANCEL_EXAMPLES, ""), ["(cancel_subscription).examples: missing"], id="missing-examples"),
        pytest.param(
            edited("      - cancel my plan\n", '      - cancel my plan\n      - "  "\n'),
            ["example #2 is blank"],
            id="blank-example",
        ),
        *(
            pytest.param(edited("name: cancel_subscription", f"name: {name}"), ["snake_case"], id=f"name-{name}")
            for name in ("Reset-Password", "2fa", "reset password")
        ),
        pytest.param(
            edited("name: cancel_subscription", "name: out_of_scope"), ["reserved"], id="out-of-scope-is-reserved"
        ),
        pytest.param(
            edited("- cancel my plan", "- Forgot my password!"),
            ["'reset_password' and 'cancel_subscription'"],
            id="example-under-two-labels",
        ),
        pytest.param(
            edited("- What's the weather tomorrow?", "- cancel my plan"),
            ["'cancel_subscription' and 'out_of_scope'"],
            id="example-also-out-of-scope",
        ),
        *(
            pytest.param(
                edited("sources: [accounts/reset-password.md]", f'sources: ["{source}"]'),
                ["relative to the knowledge-base folder"],
                id=f"source-{source}",
            )
            for source in ("/etc/passwd", "../secrets.md", "accounts\\\\reset.md")
        ),
        pytest.param(
            edited("    answer: Go to Settings", "    anwser: typo\n    answer: Go to Settings"),
            ["(cancel_subscription).anwser"],
            id="unknown-key",
        ),
        pytest.param(edited("company: Acme Cloud\n", ""), ["company: missing"], id="missing-company"),
        pytest.param("company: X\nintents: []\n", ["intents: no intents"], id="no-intents"),
    ],
)
def test_an_invalid_catalog_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, text: str | bytes, expected: list[str]
) -> None:
    message = load_error(tmp_path, text)
    for part in expected:
        assert part in message


def test_from_yaml_names_the_given_source() -> None:
    with pytest.raises(CatalogError, match="my-intents.yaml is invalid"):
        IntentCatalog.from_yaml("company: X\nintents: []\n", source="my-intents.yaml")


def test_catalog_error_is_a_user_error() -> None:
    assert CatalogError in USER_ERRORS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  How do I  reset my password?! ", "how do i reset my password"),
        ("REFUND?", "refund"),
        ("can't log-in", "can t log in"),
    ],
)
def test_normalize_question(text: str, expected: str) -> None:
    assert normalize_question(text) == expected


def test_problems_name_their_line(tmp_path: Path) -> None:
    text = VALID.replace("    answer: Go to Settings > Billing > Cancel.\n", "")
    assert "line 11: intents[1] (cancel_subscription).answer: missing" in load_error(tmp_path, text)
    text = VALID.replace("- cancel my plan", "- Forgot my password!")
    assert "line 14: intents[1] (cancel_subscription).examples[0]: example" in load_error(tmp_path, text)


def test_scalars_are_read_as_the_text_written(tmp_path: Path) -> None:
    catalog = IntentCatalog.load(write(tmp_path, VALID.replace("- cancel my plan", "- no\n      - 2024")))
    intent = catalog.get("cancel_subscription")
    assert intent is not None and intent.examples == ("no", "2024")


@pytest.mark.parametrize(
    "change",
    [
        ("name: cancel_subscription", "name: Cancel-Subscription"),
        ("- cancel my plan", "- FORGOT my password"),
        ("sources: [accounts/reset-password.md]", "sources: [../x.md]"),
        ("    answer: Go to Settings", "    anwser: typo\n    answer: Go to Settings"),
    ],
)
def test_the_bot_and_training_refuse_the_same_files(tmp_path: Path, change: tuple[str, str]) -> None:
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(CatalogError):
        IntentCatalog.load(path)
    with pytest.raises(DataError, match=r"intents\.yaml:\d+: intents\[\d\]"):
        load_examples(path)
    assert load_examples(write(tmp_path, VALID))  # and accept the same ones
