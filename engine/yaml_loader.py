"""Safe YAML reading for treaty files, with the source position of every key and value.

PyYAML composes the document into a node graph, and this module builds plain Python
data from the nodes itself. Only strings, numbers, booleans, None, lists and dicts can
come out of a file, because no tagged object is ever constructed. Building the data
here also records where each key and value was written.

Scalars are resolved close to the YAML 1.2 core schema rather than PyYAML's YAML 1.1
rules, because YAML 1.1 turns ordinary words and numbers into surprises:

- only ``true``/``false`` (any capitalisation of the whole word) are booleans, so a
  party named ``NO`` or a state named ``on`` stays text;
- ``1:30`` (YAML 1.1 base 60), ``010`` (YAML 1.1 octal), ``0x1F``, ``1_000`` and dates
  such as ``2024-01-01`` stay text; a field that needs a number then rejects them with
  a hint;
- ``1e3``, ``1.5e-3`` and ``.5`` are numbers (PyYAML reads the first as text);
- ``.nan`` and ``.inf`` are read as floats so that validation can reject them by name;
- mapping keys are always the text written, so ``2030: 0.5`` names a state ``"2030"``.

Hostile input is bounded: file size, nesting depth, and the number of nodes that
aliases may add when expanded (an alias bomb is small on disk and huge in memory).
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
from dataclasses import dataclass

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from engine.errors import NO_VALUE, Problem, SpecError, format_path

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 40
# Nodes that alias expansion may add on top of the nodes written in the file. A real
# treaty reuses a few small mappings; an alias bomb needs millions.
MAX_ALIAS_NODES = 10_000
# A number beyond the range of floats (about 1.8e308) exceeds every bound in the format.
TOO_LARGE = "the number is far outside the range of every field (its size is beyond 1.8e308)"

STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
ALLOWED_TAGS = (STR_TAG, INT_TAG, FLOAT_TAG, BOOL_TAG, NULL_TAG, MAP_TAG, SEQ_TAG)

FieldPath = tuple  # dict keys (str) and list indices (int), the same shape as pydantic locs


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column in the source text."""

    line: int
    column: int


@dataclass(frozen=True)
class Position:
    """Source position of a value and of its key (None for list items and the root)."""

    value: Mark
    key: Mark | None = None


@dataclass(frozen=True)
class LoadedYaml:
    """Plain data read from a file, and the position of every value by field path."""

    data: object
    positions: dict[FieldPath, Position]


class TreatyResolver(BaseResolver):
    """Implicit scalar types for treaty files: YAML 1.2 core, minus octal and hex."""

    yaml_implicit_resolvers: dict = {}


TreatyResolver.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
TreatyResolver.add_implicit_resolver(
    INT_TAG, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
# A float needs a dot or an exponent, so `010` matches neither this nor the int rule.
TreatyResolver.add_implicit_resolver(
    FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+"
        r"|\.[0-9]+[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
TreatyResolver.add_implicit_resolver(
    NULL_TAG, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
TreatyResolver.add_implicit_resolver(MERGE_TAG, re.compile(r"^<<$"), ["<"])


class _NestingTooDeep(Exception):
    def __init__(self, mark: yaml.Mark):
        self.mark = mark


class TreatyComposer(Reader, Scanner, Parser, Composer, TreatyResolver):
    """PyYAML's pure-Python composer with the treaty resolver and a nesting limit.

    The composer recurses once per nesting level, so a file of a million ``[`` would
    otherwise exhaust the interpreter stack.
    """

    def __init__(self, text: str):
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        TreatyResolver.__init__(self)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _NestingTooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_treaty_text(path: str | os.PathLike) -> str:
    """Read a treaty file as text; raise ``SpecError`` if it cannot be a treaty file."""
    filename = str(path)

    def fail(message: str, line: int = 1, column: int = 1) -> SpecError:
        return SpecError([Problem(filename, line, column, "", message)])

    if filename == "-":
        raise fail("reading a treaty from standard input is not supported; give the path of a file")
    if not filename:
        # Quoted, so that the message does not start with a bare colon.
        raise SpecError([Problem("''", 1, 1, "", "the file name is empty; give the path of a treaty file")])
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise fail("file not found") from None
    except OSError as error:
        raise fail(f"cannot read file: {error.strerror}") from None

    if stat.S_ISDIR(info.st_mode):
        raise fail(f"is a directory, not a treaty file; to check the files in it, run "
                   f"`treaty check {os.path.join(filename, '*.yaml')}`")
    # Reading a pipe or a device could block or never end.
    if not stat.S_ISREG(info.st_mode):
        raise fail("is not a regular file")

    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise fail(f"cannot read file: {error.strerror}") from None

    if len(raw) > MAX_FILE_BYTES:
        raise fail(
            f"file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB; "
            "a treaty file is a short YAML document, so this is probably the wrong file"
        )
    return decode_treaty_bytes(raw, filename)


def decode_treaty_bytes(raw: bytes, filename: str) -> str:
    """Decode file contents as UTF-8 text; reject binary files and other encodings."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError([Problem(filename, 1, 1, "", "file is UTF-16 or UTF-32; save it as UTF-8")])

    nul = raw.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(raw, nul)
        raise SpecError(
            [Problem(filename, line, column, "", "file is binary (contains a NUL byte), not YAML text")]
        )

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _byte_position(raw, error.start)
        raise SpecError(
            [Problem(filename, line, column, "", "file is not valid UTF-8 text; save it as UTF-8")]
        ) from None
    return text.removeprefix("\ufeff")


def _byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def load_yaml(text: str, filename: str = "<string>") -> LoadedYaml:
    """Parse one YAML document into plain data with positions; raise ``SpecError``."""
    composer = None
    try:
        # The reader checks for unprintable characters as soon as it is built.
        composer = TreatyComposer(text)
        root = composer.get_single_node()
    except _NestingTooDeep as error:
        raise SpecError(
            [
                Problem(
                    filename,
                    error.mark.line + 1,
                    error.mark.column + 1,
                    "",
                    f"nesting is deeper than {MAX_DEPTH} levels; a treaty file needs far fewer",
                )
            ]
        ) from None
    except yaml.reader.ReaderError as error:
        line, column = _text_position(text, error.position)
        code = ord(error.character) if isinstance(error.character, str) else error.character
        raise SpecError(
            [Problem(filename, line, column, "", f"character U+{code:04X} is not allowed in YAML text")]
        ) from None
    except yaml.MarkedYAMLError as error:
        raise SpecError([_syntax_problem(error, filename)]) from None
    finally:
        if composer is not None:
            composer.dispose()

    if root is None or (isinstance(root, ScalarNode) and root.tag == NULL_TAG and not root.value):
        raise SpecError(
            [Problem(filename, 1, 1, "", "file is empty; a treaty file starts with `schema: treaty/v1`")]
        )

    builder = _DataBuilder(filename)
    try:
        data = builder.build(root, (), depth=0)
    except _TooManyAliasNodes as error:
        builder.problems.append(error.problem)
    if builder.problems:
        raise SpecError(builder.problems)

    builder.positions[()] = Position(_mark(root))
    return LoadedYaml(data, builder.positions)


def _text_position(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _syntax_problem(error: yaml.MarkedYAMLError, filename: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if error.problem == "but found another document":
        return Problem(filename, line, column, "", "invalid YAML: a treaty file holds one document, but another starts here")

    message = "invalid YAML: " + (error.problem or "syntax error")
    if error.context:
        message += f" ({error.context}"
        if error.context_mark and error.context_mark is not mark:
            message += f" on line {error.context_mark.line + 1}"
        message += ")"
    return Problem(filename, line, column, "", message)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _TooManyAliasNodes(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


class _DataBuilder:
    """Build plain data from a node graph, recording positions and problems."""

    def __init__(self, filename: str):
        self.filename = filename
        self.positions: dict[FieldPath, Position] = {}
        self.problems: list[Problem] = []
        self.visits = 0
        self.distinct: set[int] = set()
        self.active: set[int] = set()
        # Key nodes already reported as duplicates. An alias or merge key builds the
        # same mapping again, and its duplicate should still be reported only once.
        self.duplicates: set[int] = set()

    def problem(
        self, node: Node, message: str, value: object = NO_VALUE, path: FieldPath = ()
    ) -> None:
        mark = _mark(node)
        self.problems.append(
            Problem(self.filename, mark.line, mark.column, format_path(path), message, value)
        )

    def build(self, node: Node, path: FieldPath, depth: int) -> object:
        self._count_visit(node)

        # An alias that points at one of its own ancestors would expand for ever.
        if id(node) in self.active:
            self.problem(node, "an alias refers to a node that contains it (a recursive structure)")
            return None
        if depth > MAX_DEPTH:
            self.problem(node, f"nesting is deeper than {MAX_DEPTH} levels")
            return None

        if node.tag not in ALLOWED_TAGS and node.tag != MERGE_TAG:
            self.problem(
                node,
                f"YAML tag `{_short_tag(node.tag)}` is not allowed; a treaty file holds plain "
                "text, numbers, true/false, lists and mappings only",
                path=path,
            )
            return None

        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._build_mapping(node, path, depth)
            if isinstance(node, SequenceNode):
                return self._build_sequence(node, path, depth)
            return self._build_scalar(node, path)
        finally:
            self.active.discard(id(node))

    def _count_visit(self, node: Node) -> None:
        self.visits += 1
        self.distinct.add(id(node))
        if self.visits - len(self.distinct) > MAX_ALIAS_NODES:
            mark = _mark(node)
            raise _TooManyAliasNodes(
                Problem(
                    self.filename,
                    mark.line,
                    mark.column,
                    "",
                    f"aliases expand to more than {MAX_ALIAS_NODES} extra nodes "
                    "(an alias bomb?); write the values out instead",
                )
            )

    def _build_sequence(self, node: SequenceNode, path: FieldPath, depth: int) -> list:
        items = []
        for index, child in enumerate(node.value):
            items.append(self.build(child, path + (index,), depth + 1))
            self.positions[path + (index,)] = Position(_mark(child))
        return items

    def _build_mapping(self, node: MappingNode, path: FieldPath, depth: int) -> dict:
        result = {}
        for key, key_node, value_node in self._mapping_pairs(node, path, depth):
            result[key] = self.build(value_node, path + (key,), depth + 1)
            self.positions[path + (key,)] = Position(_mark(value_node), _mark(key_node))
        return result

    def _mapping_pairs(
        self, node: MappingNode, path: FieldPath, depth: int
    ) -> list[tuple[str, Node, Node]]:
        """List (key, key node, value node) with merge keys (``<<``) applied.

        Keys written in the mapping override merged ones. Among merged mappings the
        earlier one wins, as in the YAML 1.1 merge-key specification. Only keys written
        in the same mapping twice are duplicates, and each is reported under its field
        path, ``path`` plus the key.
        """
        if depth > MAX_DEPTH:
            self.problem(node, f"nesting is deeper than {MAX_DEPTH} levels")
            return []

        written: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for source in self._merge_sources(value_node):
                    self._count_visit(source)
                    for key, inner_key, inner_value in self._mapping_pairs(source, path, depth + 1):
                        merged.setdefault(key, (inner_key, inner_value))
                continue

            key = self._key_text(key_node)
            if key is None:
                continue
            if key in written:
                self._duplicate_key(key, key_node, written[key][0], path)
                continue
            written[key] = (key_node, value_node)

        pairs = [(key, nodes[0], nodes[1]) for key, nodes in written.items()]
        pairs += [(key, nodes[0], nodes[1]) for key, nodes in merged.items() if key not in written]
        return pairs

    def _duplicate_key(self, key: str, key_node: Node, first_node: Node, path: FieldPath) -> None:
        if id(key_node) in self.duplicates:
            return
        self.duplicates.add(id(key_node))
        first = _mark(first_node)
        self.problem(
            key_node,
            f"duplicate key `{key}`, first defined at line {first.line}, column {first.column}; "
            "a key may appear only once in a mapping, so keep only one of them",
            path=path + (key,),
        )

    def _merge_sources(self, value_node: Node) -> list[MappingNode]:
        if isinstance(value_node, MappingNode):
            return [value_node]
        if isinstance(value_node, SequenceNode) and all(
            isinstance(item, MappingNode) for item in value_node.value
        ):
            return list(value_node.value)
        self.problem(value_node, "a merge key (`<<`) needs a mapping or a list of mappings")
        return []

    def _key_text(self, key_node: Node) -> str | None:
        if not isinstance(key_node, ScalarNode):
            self.problem(key_node, "a key must be plain text, not a list or a mapping")
            return None
        if key_node.tag not in ALLOWED_TAGS:
            self.problem(key_node, f"YAML tag `{_short_tag(key_node.tag)}` is not allowed on a key")
            return None
        return key_node.value

    def _build_scalar(self, node: ScalarNode, path: FieldPath) -> object:
        text = node.value
        if node.tag == STR_TAG:
            return text
        if node.tag == NULL_TAG:
            if text not in ("", "~", "null", "Null", "NULL"):
                self.problem(node, "`!!null` needs an empty value, `~` or `null`", text, path=path)
            return None
        if node.tag == BOOL_TAG:
            return self._build_bool(node, path)
        if node.tag == INT_TAG:
            return self._build_int(node, path)
        if node.tag == FLOAT_TAG:
            return self._build_float(node, path)
        self.problem(node, f"a scalar cannot have the tag `{_short_tag(node.tag)}`", path=path)
        return None

    def _build_bool(self, node: ScalarNode, path: FieldPath) -> bool | None:
        if node.value.lower() == "true":
            return True
        if node.value.lower() == "false":
            return False
        self.problem(node, "not a boolean; write true or false", node.value, path=path)
        return None

    def _build_int(self, node: ScalarNode, path: FieldPath) -> int | None:
        if not re.fullmatch(r"[-+]?[0-9]+", node.value):
            self.problem(node, "not a decimal integer", node.value, path=path)
            return None
        # int() refuses more than 4300 digits (a guard against slow conversion).
        try:
            number = int(node.value)
        except ValueError:
            self.problem(node, "the integer has more than 4,300 digits, far beyond any allowed value",
                         path=path)
            return None
        if abs(number) > sys.float_info.max:
            self.problem(node, TOO_LARGE, node.value, path=path)
            return None
        return number

    def _build_float(self, node: ScalarNode, path: FieldPath) -> float | None:
        text = node.value.lower()
        if text in (".inf", "+.inf"):
            return float("inf")
        if text == "-.inf":
            return float("-inf")
        if text == ".nan":
            return float("nan")
        if not re.fullmatch(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:e[-+]?[0-9]+)?", text):
            self.problem(node, "not a decimal number", node.value, path=path)
            return None
        number = float(text)
        if math.isinf(number):
            self.problem(node, TOO_LARGE, node.value, path=path)
            return None
        return number


def load_yaml_file(path: str | os.PathLike) -> LoadedYaml:
    """Read and parse a treaty file; raise ``SpecError`` naming the file on any problem."""
    filename = str(path)
    # Path('') would read as the current directory, so the name goes through as given.
    text = read_treaty_text(path)
    return load_yaml(text, filename)
