"""The intent catalog: each intent's curated answer, description and backing knowledge-base documents.

The catalog is read from the intents YAML (the demo ships `bot/demo/intents.yaml`); its format, parser and
validation are `training.intents` (one schema for the bot and for training). The catalog needs what only the
bot uses: the company name and every intent's curated answer. The training code reads the same file for its
examples; the catalog is what the bot answers with.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training.intents import IntentsFile, IntentsFileError, normalize_question, parse_intents

__all__ = ["CatalogError", "Intent", "IntentCatalog", "normalize_question"]


class CatalogError(Exception):
    """The intents file is missing or invalid; the message names the file and the problem."""


@dataclass(frozen=True)
class Intent:
    """A validated intent: what the bot says, and what it is about."""

    name: str
    description: str
    answer: str
    sources: tuple[str, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class IntentCatalog:
    """Intent name -> curated answer, description and knowledge-base sources.

    Build it with `IntentCatalog.load(path)`; it is immutable, so a loaded catalog can be shared between threads.

    Example:
        >>> catalog = IntentCatalog.load("bot/demo/intents.yaml")
        >>> catalog.answer_for("reset_password").startswith("To reset your password")
        True
    """

    company: str
    path: Path | None = None
    out_of_scope_examples: tuple[str, ...] = ()
    _intents: dict[str, Intent] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> IntentCatalog:
        """Read and validate an intents YAML file.

        Args:
            path: the intents file (UTF-8 YAML).

        Returns:
            The catalog.

        Raises:
            CatalogError: the file is missing, unreadable, not UTF-8, not valid YAML, or breaks the format
                (missing answer, duplicate intent name, empty examples, ...). The message names the file.
        """
        path = Path(path).expanduser()
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise CatalogError(
                f"intents file {path} not found; set INTENTS_FILE to your intents YAML or unset it to use the demo"
            ) from None
        except IsADirectoryError:
            raise CatalogError(f"intents file {path} is a directory; point INTENTS_FILE at the YAML file") from None
        except UnicodeDecodeError as exc:
            raise CatalogError(
                f"intents file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                "save it as UTF-8"
            ) from None
        except OSError as exc:
            raise CatalogError(f"intents file {path} cannot be read: {exc.strerror or exc}") from None
        return cls.from_yaml(text, source=path)

    @classmethod
    def from_yaml(cls, text: str, *, source: str | Path = "<string>") -> IntentCatalog:
        """Build a catalog from YAML text; `source` only names the origin in error messages."""
        try:
            parsed = parse_intents(text, source=str(source), require_answers=True)
        except IntentsFileError as exc:
            raise CatalogError(str(exc)) from None
        return cls.from_spec(parsed.spec, path=Path(source) if isinstance(source, Path) else None)

    @classmethod
    def from_spec(cls, spec: IntentsFile, *, path: Path | None = None) -> IntentCatalog:
        """Build a catalog from an intents file parsed with `require_answers=True` (company and answers given)."""
        intents = {
            item.name: Intent(item.name, item.description, item.answer or "", item.sources, item.examples)
            for item in spec.intents
        }
        return cls(company=spec.company or "", path=path, out_of_scope_examples=spec.out_of_scope, _intents=intents)

    @property
    def intents(self) -> list[str]:
        """The intent names, in file order."""
        return list(self._intents)

    def get(self, intent: str) -> Intent | None:
        """The whole intent, or None when the catalog has no such intent."""
        return self._intents.get(intent)

    def answer_for(self, intent: str) -> str | None:
        """The curated answer for `intent`, or None when the catalog has no such intent (e.g. `out_of_scope`)."""
        item = self._intents.get(intent)
        return item.answer if item else None

    def sources_for(self, intent: str) -> list[str]:
        """Knowledge-base document ids (paths relative to the KB folder) backing the answer; [] when none."""
        item = self._intents.get(intent)
        return list(item.sources) if item else []

    def describe(self, intent: str) -> str:
        """A short human-readable description of `intent`, for agents and logs.

        Falls back to the humanised name ("reset_password" -> "Reset password") when the intent has no
        description or is unknown to this catalog (e.g. a label of an older model version).
        """
        item = self._intents.get(intent)
        if item and item.description:
            return item.description
        return intent.replace("_", " ").strip().capitalize()

    def question_for(self, intent: str) -> str:
        """How a clarifying question names `intent` to a customer: its first example question, else the
        humanised name ("reset_password" -> "Reset password")."""
        item = self._intents.get(intent)
        if item and item.examples:
            return item.examples[0]
        return intent.replace("_", " ").strip().capitalize()

    def missing_sources(self, kb_dir: str | Path) -> list[tuple[str, str]]:
        """The `(intent, source)` pairs whose source document does not exist under `kb_dir`."""
        root = Path(kb_dir).expanduser()
        return [
            (item.name, src) for item in self._intents.values() for src in item.sources if not (root / src).is_file()
        ]

    def __contains__(self, intent: object) -> bool:
        return intent in self._intents

    def __iter__(self) -> Iterator[Intent]:
        return iter(self._intents.values())

    def __len__(self) -> int:
        return len(self._intents)
