"""The intents YAML: one schema and one parser, for the bot's catalog and for the training examples.

The file (the demo ships `bot/demo/intents.yaml`)::

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

`parse_intents` reads it once: YAML (a safe loader that refuses a key given twice in one mapping and reads every
scalar as text, so a question like `no` or `2024` stays the string written), then `IntentsFile` (pydantic),
then the checks across intents (each name once, each example under one label, compared with
`normalize_question`). Every problem keeps its line in the file. The bot's catalog (`bot.catalog`) needs the
curated answers and the company name (`require_answers=True`); training only needs names and examples, so a
file of examples without answers is a valid training file, but it is checked by the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from storage.text import text_form

__all__ = [
    "INTENT_NAME",
    "OUT_OF_SCOPE",
    "IntentSpec",
    "IntentsFile",
    "IntentsFileError",
    "ParsedIntents",
    "Problem",
    "normalize_question",
    "parse_intents",
]

OUT_OF_SCOPE = "out_of_scope"
"""Default label of questions the bot must not answer (the YAML's `out_of_scope` list)."""
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_PUNCTUATION = re.compile(r"[^\w\s]")


def normalize_question(text: str) -> str:
    """Fold a question for duplicate detection: `storage.text.text_form` (NFKC, case-folded, whitespace
    collapsed) with punctuation removed, so "Refund?" and "refund" count as one example.

    >>> normalize_question("  How do I  reset my password?! ")
    'how do i reset my password'
    """
    return " ".join(_PUNCTUATION.sub(" ", text_form(text)).split())


def _reserved(info: ValidationInfo) -> set[str]:
    context = info.context if isinstance(info.context, dict) else {}
    return {OUT_OF_SCOPE, str(context.get("out_of_scope_label") or OUT_OF_SCOPE)}


def _required(info: ValidationInfo) -> bool:
    return bool(isinstance(info.context, dict) and info.context.get("require_answers"))


def _missing() -> PydanticCustomError:
    return PydanticCustomError("missing", "Field required")


class IntentSpec(BaseModel):
    """One intent as written in the YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str
    description: str = ""
    answer: str | None = Field(default=None, validate_default=True)
    sources: tuple[str, ...] = ()
    examples: tuple[str, ...]

    @field_validator("description", "sources", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return "" if info.field_name == "description" else ()
        return value

    @field_validator("name")
    @classmethod
    def _snake_case(cls, value: str, info: ValidationInfo) -> str:
        if value in _reserved(info):
            raise ValueError(f"{value!r} is reserved for the out_of_scope list; rename the intent")
        if not INTENT_NAME.match(value):
            raise ValueError(f"intent name {value!r} must be snake_case (lowercase letters, digits, underscores)")
        return value

    @field_validator("answer")
    @classmethod
    def _answer_not_empty(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if _required(info):
                raise _missing()
            return None
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


class IntentsFile(BaseModel):
    """The whole intents file. Validate it through `parse_intents`, which adds the checks across intents."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    company: str | None = Field(default=None, validate_default=True)
    intents: tuple[IntentSpec, ...]
    out_of_scope: tuple[str, ...] = ()

    @field_validator("company")
    @classmethod
    def _company(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and _required(info):
            raise _missing()
        if value is not None and not value:
            raise ValueError("the company name is empty; write the name customers know you by")
        return value

    @field_validator("intents")
    @classmethod
    def _some_intents(cls, value: tuple[IntentSpec, ...]) -> tuple[IntentSpec, ...]:
        if not value:
            raise ValueError("no intents; add at least one intent with an answer and examples")
        return value

    @field_validator("out_of_scope", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return () if value is None else value

    @field_validator("out_of_scope")
    @classmethod
    def _strip(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not text.strip() for text in value):
            raise ValueError("an out_of_scope example is blank")
        return tuple(text.strip() for text in value)


# --- Problems ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: where (`intents[1] (refund).answer`, "" for the whole file), on which
    line (1-based; None when unknown) and what."""

    where: str
    line: int | None
    message: str


class IntentsFileError(ValueError):
    """The intents file is not valid YAML, not a mapping, or breaks the schema.

    `str()` is the catalog's one-line message (`intents file X is invalid: ...`); `located()` writes each
    problem as `X:LINE: where: message`, like the other training-data errors.
    """

    def __init__(
        self, source: str, kind: Literal["yaml", "shape", "schema"], problems: list[Problem], column: int | None = None
    ) -> None:
        self.source, self.kind, self.problems, self.column = source, kind, problems, column
        super().__init__(self._describe())

    def _describe(self) -> str:
        first = self.problems[0]
        if self.kind == "yaml":
            where = f" at line {first.line}, column {self.column}" if first.line is not None else ""
            return f"intents file {self.source} is not valid YAML{where}: {first.message}"
        if self.kind == "shape":
            return f"intents file {self.source} is {first.message}; expected {_SHAPE}"
        return f"intents file {self.source} is invalid: " + "; ".join(_render(p) for p in self.problems)

    def located(self) -> str:
        """The problems as `SOURCE:LINE: where: message` (then `; line N: ...` for the others)."""
        first, *rest = self.problems
        if self.kind == "yaml":
            return f"{self.source}:{first.line or 1}: invalid YAML ({first.message})"
        if self.kind == "shape":
            return f"{self.source}:1: expected {_SHAPE}, not {first.message}"
        head = f"{self.source}:{first.line or 1}: {_render(first, line=False)}"
        return "; ".join([head, *(_render(p) for p in rest)])


_SHAPE = "a mapping with 'company', 'intents' and 'out_of_scope'"


def _render(problem: Problem, *, line: bool = True) -> str:
    where = f"{problem.where}: " if problem.where else ""
    at = f"line {problem.line}: " if line and problem.line is not None else ""
    return f"{at}{where}{problem.message}"


_MESSAGES = {
    "missing": "missing (required)",
    "extra_forbidden": "unknown key; check its spelling against the intents file format",
    "string_type": "must be plain text (a string)",
    "tuple_type": "must be a list",
    "model_type": "must be a mapping (name, answer, examples, ...)",
}


# --- Parsing -----------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (PyYAML silently keeps the last) and reads
    every non-null scalar as the text written (`no`, `1.5`, `2024-05-01` are questions, not values)."""


def _construct_unique_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} in one mapping", key_node.start_mark
            )
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


def _construct_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
for _tag in ("bool", "int", "float", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _construct_text)


@dataclass(frozen=True)
class ParsedIntents:
    """A validated intents file and where each of its values is written."""

    spec: IntentsFile
    _root: yaml.Node

    def line(self, *loc: int | str) -> int | None:
        """The 1-based line of the value at `loc` (e.g. `"intents", 0, "examples", 2`)."""
        return _line_of(self._root, loc)


def parse_intents(
    text: str,
    *,
    source: str = "<string>",
    require_answers: bool = True,
    out_of_scope_label: str = OUT_OF_SCOPE,
) -> ParsedIntents:
    """Read and validate intents YAML text.

    Args:
        text: the file's content.
        source: names the file in error messages.
        require_answers: the bot's catalog needs `company` and every intent's `answer`; training does not.
        out_of_scope_label: a label no intent may be named (besides `out_of_scope`).

    Raises:
        IntentsFileError: invalid YAML, not a mapping, or a schema problem (all of them, each with its line).
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = str(getattr(exc, "problem", None) or exc)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise IntentsFileError(source, "yaml", [Problem("", line, problem)], column) from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict) or root is None:
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise IntentsFileError(source, "shape", [Problem("", 1, kind)])
    context = {"require_answers": require_answers, "out_of_scope_label": out_of_scope_label}
    try:
        spec = IntentsFile.model_validate(raw, context=context)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = _MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
            problems.append(Problem(_describe_location(loc, raw), _line_of(root, loc), message))
        raise IntentsFileError(source, "schema", problems) from None
    parsed = ParsedIntents(spec, root)
    problems = _cross_check(parsed, raw)
    if problems:
        raise IntentsFileError(source, "schema", problems)
    return parsed


def _cross_check(parsed: ParsedIntents, raw: Any) -> list[Problem]:
    """Each intent name once; each example (folded by `normalize_question`) under one label."""
    problems: list[Problem] = []
    spec = parsed.spec
    first_name: dict[str, int] = {}
    for i, intent in enumerate(spec.intents):
        if intent.name in first_name:
            first = parsed.line("intents", first_name[intent.name], "name")
            message = f"duplicate intent name {intent.name!r}; each intent must appear once (first at line {first})"
            loc: tuple[int | str, ...] = ("intents", i, "name")
            problems.append(Problem(_describe_location(loc, raw), parsed.line(*loc), message))
        first_name.setdefault(intent.name, i)
    owner: dict[str, tuple[str, tuple[int | str, ...]]] = {}
    labelled: list[tuple[str, str, tuple[int | str, ...]]] = [
        (intent.name, text, ("intents", i, "examples", j))
        for i, intent in enumerate(spec.intents)
        for j, text in enumerate(intent.examples)
    ]
    labelled += [(OUT_OF_SCOPE, text, ("out_of_scope", j)) for j, text in enumerate(spec.out_of_scope)]
    for label, text, loc in labelled:
        first_label, first_loc = owner.setdefault(normalize_question(text), (label, loc))
        if first_label != label:
            message = (
                f"example {text!r} is listed under both {first_label!r} and {label!r}; keep it in one "
                f"(first at line {parsed.line(*first_loc)})"
            )
            problems.append(Problem(_describe_location(loc, raw), parsed.line(*loc), message))
    return problems


def _line_of(root: yaml.Node, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest node of `loc` that exists (a missing key: its mapping's line)."""
    node = root
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((value for key, value in node.value if str(key.value) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


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
    return "".join(parts)
