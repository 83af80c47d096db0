"""An OpenAPI (structural schema) validator that answers as the API server would, in a learner's words.

It walks a JSON value against a schema (Kubernetes' definitions or a CRD's ``openAPIV3Schema``) and returns
the value as the API server would store it: ``null`` fields dropped (null means unset), CRD defaults filled
in, unknown fields pruned. Every problem is collected with its path, never just the first one:

* unknown fields (``spec.analysis.threshhold: unknown field; did you mean threshold?``): errors, warnings
  or silence, following ``--validate=strict|warn|ignore`` as ``kubectl`` does;
* wrong types, quoting what the user wrote (``spec.minReadySeconds: must be an integer (got "abc")``);
* required fields, enums, bounds, patterns, ``oneOf``/``anyOf``/``not`` of CRDs, int-or-string, int32.

CEL rules (``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Schema = dict[str, Any]

STRICT, WARN, IGNORE = "strict", "warn", "ignore"
MODES = (STRICT, WARN, IGNORE)

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false"}  # fmt: skip


def show(value: Any) -> str:
    """A value as the user wrote it, short: ``"abc"``, ``{}``, ``["app"]``, ``5``."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def path_text(path: tuple[str | int, ...]) -> str:
    """``spec.ports[0].port`` for ``("spec", "ports", 0, "port")``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(the document)"


@dataclass(frozen=True)
class Finding:
    """One problem: where, what, and whether it is only a warning (``--validate=warn`` unknown fields)."""

    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Checker:
    """Validates values against schemas whose ``$ref`` names resolve in ``definitions``."""

    definitions: dict[str, Schema] = field(default_factory=dict)
    mode: str = STRICT
    findings: list[Finding] = field(default_factory=list)

    # ------------------------------------------------------------------------------- reporting

    def error(self, path: tuple[str | int, ...], message: str) -> None:
        self.findings.append(Finding(path_text(path), message))

    def unknown(self, path: tuple[str | int, ...], known: list[str]) -> None:
        if self.mode == IGNORE:
            return
        name = str(path[-1])
        hint = _suggest(name, tuple(known))
        message = "unknown field" + (f"; did you mean {hint}?" if hint else "")
        if self.mode == WARN:
            message += " (ignored: --validate=warn)"
        self.findings.append(Finding(path_text(path), message, warning=self.mode == WARN))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if not f.warning]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.warning]

    # ------------------------------------------------------------------------------- walking

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            schema = self.definitions[schema["$ref"]]
        return schema

    def check(self, value: Any, schema: Schema, path: tuple[str | int, ...] = ()) -> Any:
        """``value`` as the API server would keep it (nulls dropped, defaults set, unknown fields pruned)."""
        schema = self.resolve(schema)
        if schema.get("x-kubernetes-int-or-string"):
            if isinstance(value, bool) or not isinstance(value, int | str):
                self.error(path, f"must be an integer or a string such as 25% (got {show(value)})")
            return value
        expected = schema.get("type")
        if expected is not None and not _is_type(value, expected):
            names: list[str] = expected if isinstance(expected, list) else [expected]
            words = " or ".join(_TYPE_WORDS.get(t, t) for t in names)
            self.error(path, f"must be {words} (got {show(value)})")
            return value
        if isinstance(value, dict):
            value = self._object(value, schema, path)
        elif isinstance(value, list):
            value = self._array(value, schema, path)
        else:
            self._scalar(value, schema, path)
        for keyword, rule in _COMBINATORS.items():
            if keyword in schema:
                rule(self, value, schema[keyword], path)
        return value

    def _object(self, value: dict[str, Any], schema: Schema, path: tuple[str | int, ...]) -> dict[str, Any]:
        properties: dict[str, Schema] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = (*path, key)
            if key in properties:
                if item is None:
                    continue  # null means unset, as the API server reads it
                out[key] = self.check(item, properties[key], where)
            elif isinstance(extra, dict):
                if item is None:
                    continue
                out[key] = self.check(item, extra, where)
            elif extra is True or preserve:
                out[key] = item
            else:
                self.unknown(where, list(properties))
        for key in schema.get("required") or ():
            if value.get(key) is None:
                self.error((*path, key), "is required")
        for key, sub in properties.items():
            if key not in out and "default" in self.resolve(sub):
                out[key] = json.loads(json.dumps(self.resolve(sub)["default"]))
        for bound, words in (("minProperties", "at least"), ("maxProperties", "at most")):
            limit = schema.get(bound)
            if limit is not None and (len(out) < limit if bound == "minProperties" else len(out) > limit):
                self.error(path, f"must have {words} {limit} entries (got {len(out)})")
        return out

    def _array(self, value: list[Any], schema: Schema, path: tuple[str | int, ...]) -> list[Any]:
        items = schema.get("items")
        out: list[Any] = []
        for i, item in enumerate(value):
            if item is None:
                self.error((*path, i), "must not be null")
                continue
            out.append(self.check(item, items, (*path, i)) if isinstance(items, dict) else item)
        low, high = schema.get("minItems"), schema.get("maxItems")
        if low is not None and len(out) < low:
            self.error(path, f"must list at least {low} items (got {len(out)})")
        if high is not None and len(out) > high:
            self.error(path, f"must list at most {high} items (got {len(out)})")
        return out

    def _scalar(self, value: Any, schema: Schema, path: tuple[str | int, ...]) -> None:
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            shown = ", ".join(show(e) for e in enum[:12]) + (", ..." if len(enum) > 12 else "")
            self.error(path, f"must be one of {shown} (got {show(value)})")
            return
        fmt = schema.get("format")
        if fmt in ("int32", "int64") and isinstance(value, int):
            low, high = _INT32 if fmt == "int32" else _INT64
            if not low <= value <= high:
                self.error(path, f"must fit in a {fmt[3:]}-bit integer (got {value})")
        elif fmt == "byte" and isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                self.error(path, "must be base64 (use stringData for plain text)")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                self.error(path, f"must be at least {schema['minimum']} (got {show(value)})")
            if "maximum" in schema and value > schema["maximum"]:
                self.error(path, f"must be at most {schema['maximum']} (got {show(value)})")
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                self.error(path, f"must be at least {schema['minLength']} characters long (got {show(value)})")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                self.error(path, f"must be at most {schema['maxLength']} characters long")
            pattern = schema.get("pattern")
            if pattern is not None and not _compiled(pattern).search(value):
                self.error(path, f"must match {pattern} (got {show(value)})")

    # ------------------------------------------------------------------------------- combinators

    def matches(self, value: Any, schema: Schema) -> bool:
        """Whether ``value`` satisfies a value-validation schema (unknown fields do not count)."""
        probe = Checker(self.definitions, IGNORE)
        probe.check(value, schema)
        return not probe.findings


def _one_of(checker: Checker, value: Any, options: list[Schema], path: tuple[str | int, ...]) -> None:
    passing = [o for o in options if checker.matches(value, o)]
    if len(passing) == 1:
        return
    if all(isinstance(o.get("required"), list) and set(o) == {"required"} for o in options):
        requireds: list[list[str]] = [o["required"] for o in options]
        common = set.intersection(*(set(r) for r in requireds)) if requireds else set()
        choices = [", ".join(k for k in r if k not in common) for r in requireds]
        needed = ", ".join(k for k in requireds[0] if k in common)
        if not passing:
            missing = [k for k in requireds[0] if k in common and not (isinstance(value, dict) and k in value)]
            if missing:
                checker.error(path, f"must set {needed}" + (f" and one of {', '.join(choices)}" if choices else "")
                              + f" ({', '.join(missing)} missing)")
            else:
                checker.error(path, f"must set one of {', '.join(choices)}")
        else:
            checker.error(path, f"must set only one of {', '.join(choices)}, not several")
        return
    checker.error(path, "must match exactly one of its allowed forms" if not passing
                  else "matches more than one of its allowed forms")


def _any_of(checker: Checker, value: Any, options: list[Schema], path: tuple[str | int, ...]) -> None:
    if not any(checker.matches(value, o) for o in options):
        checker.error(path, "matches none of its allowed forms")


def _not(checker: Checker, value: Any, option: Schema, path: tuple[str | int, ...]) -> None:
    if checker.matches(value, option):
        checker.error(path, "has a form that is not allowed")


def _all_of(checker: Checker, value: Any, options: list[Schema], path: tuple[str | int, ...]) -> None:
    for option in options:
        if not checker.matches(value, option):
            checker.error(path, "does not match all of its required forms")
            return


_COMBINATORS: dict[str, Callable[[Checker, Any, Any, tuple[str | int, ...]], None]] = {
    "oneOf": _one_of, "anyOf": _any_of, "not": _not, "allOf": _all_of,
}  # fmt: skip


def _is_type(value: Any, expected: str | list[str]) -> bool:
    if isinstance(expected, list):
        return any(_is_type(value, t) for t in expected)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=4096)
def _suggest(name: str, known: tuple[str, ...]) -> str | None:
    """The known field the user most likely meant (case slips first, then close spellings)."""
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None
