"""The intent catalog: each intent's curated answer, description and backing knowledge-base documents.

The catalog is read from the intents YAML (the demo ships `bot/demo/intents.yaml`)::

    company: Nimbus
    intents:
      - name: reset_password
        description: "Customer cannot log in / wants to reset the password"
        answer: |
          To reset your password, ...
        sources: [accounts/reset-password.md]
        examples:
          - How do I reset my password?
    out_of_scope:
      - What's the weather tomorrow?

The training code reads the same file for its examples; the catalog is what the bot answers with.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
OUT_OF_SCOPE = "out_of_scope"


class CatalogError(Exception):
    """The intents file is missing or invalid; the message names the file and the problem."""


def normalize_question(text: str) -> str:
    """Fold a question for duplicate detection: lowercase, punctuation removed, whitespace collapsed.

    >>> normalize_question("  How do I  reset my password?! ")
    'how do i reset my password'
    """
    folded = re.sub(r"[^\w\s]", " ", text.casefold())
    return " ".join(folded.split())


class IntentSpec(BaseModel):
    """One intent as written in the YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str
    description: str = ""
    answer: str
    sources: tuple[str, ...] = ()
    examples: tuple[str, ...]

    @field_validator("name")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not INTENT_NAME.match(value):
            raise ValueError(f"intent name {value!r} must be snake_case (lowercase letters, digits, underscores)")
        if value == OUT_OF_SCOPE:
            raise ValueError(f"{OUT_OF_SCOPE!r} is reserved for the out_of_scope list; rename the intent")
        return value

    @field_validator("answer")
    @classmethod
    def _answer_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("the answer is empty; write the reply the bot should give")
        return value

    @field_validator("examples")
    @classmethod
    def _examples_not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("no examples; list at least one question customers ask for this intent")
        blank = [i for i, text in enumerate(value) if not text.strip()]
        if blank:
            raise ValueError(f"example #{blank[0] + 1} is blank")
        return tuple(text.strip() for text in value)

    @field_validator("sources")
    @classmethod
    def _relative_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for source in value:
            path = PurePosixPath(source)
            if not source or path.is_absolute() or ".." in path.parts or "\\" in source:
                raise ValueError(f"source {source!r} must be a path relative to the knowledge-base folder")
        return value


class CatalogSpec(BaseModel):
    """The whole intents file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    company: str = Field(min_length=1)
    intents: tuple[IntentSpec, ...]
    out_of_scope: tuple[str, ...] = ()

    @field_validator("intents")
    @classmethod
    def _some_intents(cls, value: tuple[IntentSpec, ...]) -> tuple[IntentSpec, ...]:
        if not value:
            raise ValueError("no intents; add at least one intent with an answer and examples")
        return value

    @field_validator("out_of_scope")
    @classmethod
    def _strip(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not text.strip() for text in value):
            raise ValueError("an out_of_scope example is blank")
        return tuple(text.strip() for text in value)

    @model_validator(mode="after")
    def _consistent(self) -> CatalogSpec:
        seen_names: set[str] = set()
        for intent in self.intents:
            if intent.name in seen_names:
                raise ValueError(f"duplicate intent name {intent.name!r}; each intent must appear once")
            seen_names.add(intent.name)
        owner: dict[str, str] = {}
        labelled = [(intent.name, text) for intent in self.intents for text in intent.examples]
        labelled += [(OUT_OF_SCOPE, text) for text in self.out_of_scope]
        for label, text in labelled:
            key = normalize_question(text)
            first = owner.setdefault(key, label)
            if first != label:
                raise ValueError(f"example {text!r} is listed under both {first!r} and {label!r}; keep it in one")
        return self


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (PyYAML silently keeps the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} in one mapping", key_node.start_mark
            )
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _describe_location(loc: tuple[int | str, ...], raw: Any) -> str:
    """Turn a pydantic error location into `intents[3] (reset_password).answer`."""
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            name = ""
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    name = f" ({node['name']})"
            else:
                node = None
            parts.append(f"[{part}]{name}")
        else:
            node = node.get(part) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + part)
    return "".join(parts) or "file"


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
        >>> catalog.answer_for("reset_password")  # doctest: +ELLIPSIS
        'To reset your password...'
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
            raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            where = ""
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                where = f" at line {mark.line + 1}, column {mark.column + 1}"
            problem = getattr(exc, "problem", None) or str(exc)
            raise CatalogError(f"intents file {source} is not valid YAML{where}: {problem}") from None
        if not isinstance(raw, dict):
            kind = "empty" if raw is None else f"a {type(raw).__name__}"
            raise CatalogError(
                f"intents file {source} is {kind}; expected a mapping with 'company', 'intents' and 'out_of_scope'"
            )
        try:
            spec = CatalogSpec.model_validate(raw)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "missing":
                    message = "missing (required)"
                problems.append(f"{_describe_location(tuple(error['loc']), raw)}: {message}")
            raise CatalogError(f"intents file {source} is invalid: " + "; ".join(problems)) from None
        return cls.from_spec(spec, path=Path(source) if isinstance(source, Path) else None)

    @classmethod
    def from_spec(cls, spec: CatalogSpec, *, path: Path | None = None) -> IntentCatalog:
        """Build a catalog from an already validated `CatalogSpec`."""
        intents = {
            item.name: Intent(item.name, item.description, item.answer, item.sources, item.examples)
            for item in spec.intents
        }
        return cls(company=spec.company, path=path, out_of_scope_examples=spec.out_of_scope, _intents=intents)

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
