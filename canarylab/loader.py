"""The one YAML loader for every file a user gives: manifests (``-f``), scenarios, keymaps.

It reads YAML the way ``kubectl`` turns it into JSON, and refuses hostile input before it costs anything:

* **size**: a file larger than :attr:`Limits.max_bytes` is refused before it is read;
* **documents**: more than :attr:`Limits.max_documents` documents in one file;
* **nesting depth**: a mapping or list nested deeper than :attr:`Limits.max_depth` is refused as soon as the
  parser reaches it (PyYAML's own composer recurses and dies with ``RecursionError`` near 1,000 levels);
* **alias expansion**: the nodes that aliases (``*name``) add to one document are counted as if copied, and a
  document whose aliases add more than :attr:`Limits.max_alias_nodes` is refused at once (the "billion laughs"
  bomb); a long string counts one node per 64 characters.

Values come out as JSON (dicts with string keys, lists, str, int, float, bool, None). As in Kubernetes'
YAML-to-JSON step, timestamps stay strings, scalar keys become strings, and merge keys (``<<: *base``) are
honoured; aliases are expanded into copies, never shared objects. Non-scalar keys, recursive aliases, custom
tags and ``.inf``/``.nan`` are errors naming the line; a duplicate key is an error too unless the caller takes it
as a warning (``on_duplicate``: the last value wins, as in kubectl). Every failure is a :class:`LoadError`
(a :class:`~canarylab.errors.UserError`, exit code 2) naming the file, the line and the limit or rule.

The parser is libyaml's (PyYAML's C extension) when present; documents are built from its event stream
without recursion.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml import events as ev
from yaml.nodes import ScalarNode

from canarylab.errors import UserError

__all__ = ["Limits", "LoadError", "load_documents", "load_yaml", "parse_documents", "read_text"]


@dataclass(frozen=True)
class Limits:
    """How much YAML one file may hold. The defaults leave room for thousands of real manifests."""

    max_bytes: int = 16 * 1024 * 1024
    max_documents: int = 10_000
    max_depth: int = 100
    max_alias_nodes: int = 100_000


DEFAULT_LIMITS = Limits()
_LONG_STRING = 64  # characters per node when a string is copied through an alias


class LoadError(UserError):
    """A file that cannot be loaded: unreadable, not YAML, or over one of the :class:`Limits`."""


def _mebibytes(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def read_text(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> str:
    """The text of a user's file, or a :class:`LoadError` saying why it cannot be read (or is too large)."""
    name = str(path)
    try:
        size = os.stat(name).st_size
        if size > limits.max_bytes:
            raise LoadError(f"{name}: the file is {_mebibytes(size)}, more than the limit of "
                            f"{_mebibytes(limits.max_bytes)} for one YAML file (size limit); split it into "
                            "several files.")
        with open(name, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise LoadError(f"{name}: no such file.") from None
    except IsADirectoryError:
        raise LoadError(f"{name}: is a directory; give a YAML file.") from None
    except OSError as err:
        raise LoadError(f"{name}: cannot be read ({err.strerror or err}).") from None
    if len(data) > limits.max_bytes:  # it grew while we read it (a pipe or a device)
        raise LoadError(f"{name}: more than the limit of {_mebibytes(limits.max_bytes)} for one YAML file "
                        "(size limit).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LoadError(f"{name}: is not UTF-8 text (byte {err.start}: {data[err.start:err.start + 1]!r}); "
                        "YAML files must be UTF-8.") from None


def load_documents(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS, *,
                   on_duplicate: Callable[[str], None] | None = None) -> list[Any]:
    """Every document of a YAML file, empty ones included as ``None``."""
    return parse_documents(read_text(path, limits), str(path), limits, on_duplicate=on_duplicate)


def load_yaml(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> Any:
    """The single document of a YAML file (``None`` when it is empty); several documents are an error."""
    docs = load_documents(path, limits)
    if len(docs) > 1:
        raise LoadError(f"{path}: holds {len(docs)} YAML documents (separated by ---); this file takes one.")
    return docs[0] if docs else None


# ------------------------------------------------------------------------------------------ scalars

_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_AS_TEXT = {f"tag:yaml.org,2002:{t}" for t in ("str", "timestamp", "binary")}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_MERGE = object()  # the merge key ``<<`` (plain), as opposed to a quoted "<<"
_PLAIN: dict[str, Any] = {}  # plain scalar text -> its value (keys and small values repeat a lot)


class _ScalarProblem(Exception):
    pass


def _typed(tag: str, text: str) -> Any:
    if tag in _AS_TEXT:
        return text  # timestamps stay strings, as in Kubernetes' YAML-to-JSON; !!binary stays base64 text
    if tag == _MERGE_TAG:
        return _MERGE
    node = ScalarNode(tag, text)
    try:
        if tag == _INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == _FLOAT:
            value = _CONSTRUCTOR.construct_yaml_float(node)
            if value != value or value in (float("inf"), float("-inf")):
                raise _ScalarProblem(f"{text!r} is not a JSON number (.inf and .nan have no JSON form)")
            return value
        if tag == _BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == _NULL:
            return None
    except (ValueError, IndexError, OverflowError, yaml.YAMLError):  # PyYAML's constructors on odd text
        raise _ScalarProblem(f"{text!r} is not a valid {tag.rsplit(':', 1)[-1]}") from None
    raise _ScalarProblem(f"the tag {_tag(tag)} is not supported (Kubernetes manifests use plain JSON values)")


def _tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _scalar(event: ev.ScalarEvent) -> Any:
    tag, text = event.tag, event.value
    if tag is None or tag == "!":
        if event.style or tag == "!":  # quoted, literal or folded: a string (plain is None or "")
            return text
        try:
            return _PLAIN[text]
        except KeyError:
            pass
        value = _typed(_RESOLVER.resolve(ScalarNode, text, (True, False)), text)
        if len(_PLAIN) < 50_000:
            _PLAIN[text] = value
        return value
    return _typed(tag, text)


# ------------------------------------------------------------------------------------------ documents


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "at the end"


def _copy(value: Any) -> Any:
    return marshal.loads(marshal.dumps(value)) if isinstance(value, dict | list) else value


class _Frame:
    """A mapping or list being built."""

    __slots__ = ("anchor", "key", "key_mark", "mark", "merges", "value", "weight")

    def __init__(self, value: dict[str, Any] | list[Any], anchor: str | None, mark: Any) -> None:
        self.value = value
        self.anchor = anchor
        self.mark = mark
        self.weight = 1
        self.key: Any = _NO_KEY
        self.key_mark: Any = None
        self.merges: list[Any] | None = None


_NO_KEY = object()


def parse_documents(text: str, source: str, limits: Limits = DEFAULT_LIMITS, *,
                    on_duplicate: Callable[[str], None] | None = None) -> list[Any]:
    """Every document in ``text`` (``source`` names it in messages), within ``limits``.

    A duplicate key is an error, unless ``on_duplicate`` is given: then it is called with the message and the
    last value wins (``--validate=warn``).
    """
    if len(text) > limits.max_bytes:
        raise LoadError(f"{source}: more than the limit of {_mebibytes(limits.max_bytes)} for one YAML file "
                        "(size limit).")
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    parser = loader_class(text)
    docs: list[Any] = []
    try:
        _build(parser, docs, source, limits, on_duplicate)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        problem = err.problem or err.context or "cannot be parsed"
        raise LoadError(f"{source}: {_where(mark)}: is not valid YAML: {problem}.") from None
    except yaml.reader.ReaderError as err:
        before = text[: max(0, err.position)]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        char = err.character if isinstance(err.character, str) else chr(err.character)
        raise LoadError(f"{source}: line {line}, column {column}: is not valid YAML: the character "
                        f"U+{ord(char):04X} is not allowed ({err.reason}).") from None
    except yaml.YAMLError as err:
        raise LoadError(f"{source}: is not valid YAML: {' '.join(str(err).split())}.") from None
    finally:
        parser.dispose()
    return docs


def _build(parser: Any, docs: list[Any], source: str, limits: Limits,
           on_duplicate: Callable[[str], None] | None) -> None:
    stack: list[_Frame] = []
    anchors: dict[str, tuple[Any, int]] = {}
    open_anchors: set[str] = set()
    alias_nodes = 0
    max_depth = limits.max_depth
    document = 0

    def fail(message: str, mark: Any) -> LoadError:
        return LoadError(f"{source}: document {document}, {_where(mark)}: {message}")

    def put(value: Any, weight: int, mark: Any) -> Any:
        """Place a finished node in its parent; returns it when it is the document's root."""
        if not stack:
            return "<<" if value is _MERGE else value
        top = stack[-1]
        top.weight += weight
        container = top.value
        if isinstance(container, list):
            container.append("<<" if value is _MERGE else value)
            return _NO_KEY
        if top.key is _NO_KEY:  # this node is a key
            if value is _MERGE:
                top.key, top.key_mark = _MERGE, mark
                return _NO_KEY
            if isinstance(value, dict | list):
                raise fail("a mapping key must be a plain value, not a mapping or a list.", mark)
            key = value
            if isinstance(key, bool):
                key = "true" if key else "false"
            elif key is None:
                key = "null"
            top.key = key if isinstance(key, str) else str(key)
            top.key_mark = mark
            return _NO_KEY
        key, top.key = top.key, _NO_KEY
        if value is _MERGE:
            value = "<<"
        if key is _MERGE:
            if not isinstance(value, dict | list):
                raise fail("a merge key (<<) takes a mapping or a list of mappings.", top.key_mark)
            top.merges = (top.merges or []) + ([value] if isinstance(value, dict) else value)
            return _NO_KEY
        if key in container:
            message = f"the key {key!r} appears twice in the same mapping"
            if on_duplicate is None:
                raise fail(message + "; remove one of them.", top.key_mark)
            on_duplicate(f"{source}: document {document}, {_where(top.key_mark)}: {message}; the last one is used.")
        container[key] = value
        return _NO_KEY

    while True:
        event = parser.get_event()
        cls = type(event)
        if cls is ev.ScalarEvent:
            try:
                value = _scalar(event)
            except _ScalarProblem as err:
                raise fail(f"{err}.", event.start_mark) from None
            weight = 1 + len(event.value) // _LONG_STRING
            if event.anchor is not None:
                anchors[event.anchor] = (value, weight)
            root = put(value, weight, event.start_mark)
            if root is not _NO_KEY:
                docs.append(root)
        elif cls is ev.MappingStartEvent or cls is ev.SequenceStartEvent:
            if event.tag not in _COLLECTION_TAGS:
                raise fail(f"the tag {_tag(event.tag)} is not supported (Kubernetes manifests use plain JSON values).",
                           event.start_mark)
            if len(stack) >= max_depth:
                raise fail(f"nested deeper than {max_depth} levels (nesting depth limit); Kubernetes objects "
                           "need far fewer.", event.start_mark)
            frame = _Frame({} if cls is ev.MappingStartEvent else [], event.anchor, event.start_mark)
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            stack.append(frame)
        elif cls is ev.MappingEndEvent or cls is ev.SequenceEndEvent:
            frame = stack.pop()
            value = frame.value
            if frame.merges:
                for merged in frame.merges:
                    if not isinstance(merged, dict):
                        raise fail("a merge key (<<) takes a mapping or a list of mappings.", frame.mark)
                    for k, v in merged.items():
                        value.setdefault(k, _copy(v))  # type: ignore[union-attr]
            if frame.anchor is not None:
                anchors[frame.anchor] = (value, frame.weight)
                open_anchors.discard(frame.anchor)
            root = put(value, frame.weight, frame.mark)
            if root is not _NO_KEY:
                docs.append(root)
        elif cls is ev.AliasEvent:
            name = event.anchor
            if name in open_anchors:
                raise fail(f"the alias *{name} refers to a node that contains it (a recursive structure has no "
                           "JSON form).", event.start_mark)
            if name not in anchors:
                raise fail(f"the alias *{name} has no anchor &{name} before it.", event.start_mark)
            value, weight = anchors[name]
            alias_nodes += weight
            if alias_nodes > limits.max_alias_nodes:
                raise fail(f"aliases expand this document by more than {limits.max_alias_nodes:,} nodes (alias "
                           "expansion limit); this looks like a YAML alias bomb.", event.start_mark)
            root = put(_copy(value), weight, event.start_mark)
            if root is not _NO_KEY:
                docs.append(root)
        elif cls is ev.DocumentStartEvent:
            document += 1
            if document > limits.max_documents:
                raise LoadError(f"{source}: more than {limits.max_documents:,} YAML documents in one file "
                                "(document count limit); split it into several files.")
            anchors.clear()
            open_anchors.clear()
            alias_nodes = 0
        elif cls is ev.DocumentEndEvent:
            if len(docs) < document:
                docs.append(None)  # an empty document (only comments, or `---` alone)
        elif cls is ev.StreamEndEvent:
            return

