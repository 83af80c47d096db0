"""The safe YAML loader: YAML as Kubernetes turns it into JSON, and every limit named when it is hit."""

from __future__ import annotations

import pytest
import yaml

from canarylab.loader import Limits, LoadError, parse_documents


def test_values_are_json_as_kubernetes_reads_them() -> None:
    (doc,) = parse_documents("when: 2020-01-01\nn: ~\nhex: 0x10\nf: 1.5\nyes: yes\n1: one\ns: '5'\nb: !!binary aGk=\n",
                             "x.yaml")
    assert doc == {"when": "2020-01-01", "n": None, "hex": 16, "f": 1.5, "true": True, "1": "one", "s": "5",
                   "b": "aGk="}


def test_the_seed_loads_as_pyyaml_loads_it() -> None:
    from canarylab.manifests import bootstrap_file

    text = bootstrap_file("workloads", "podinfo.yaml").read_text()
    assert parse_documents(text, "podinfo.yaml") == list(yaml.safe_load_all(text))


def test_aliases_are_copies_and_merge_keys_work() -> None:
    (doc,) = parse_documents("base: &base {a: 1, b: {c: 2}}\nuse: {<<: *base, a: 3}\nagain: *base\n", "m.yaml")
    assert doc["use"] == {"a": 3, "b": {"c": 2}}
    assert doc["again"] == doc["base"] and doc["again"] is not doc["base"]
    doc["again"]["b"]["c"] = 9
    assert doc["base"]["b"]["c"] == 2


def test_empty_documents_are_none_and_no_documents_is_an_empty_list() -> None:
    assert parse_documents("", "e.yaml") == []
    assert parse_documents("# nothing\n", "e.yaml") == []
    assert parse_documents("---\n---\na: 1\n", "e.yaml") == [None, {"a": 1}]


@pytest.mark.parametrize("text, words", [
    ("a: 1\na: 2\n", "document 1, line 2, column 1: the key 'a' appears twice"),
    ("a: &a [*a]\n", "the alias *a refers to a node that contains it"),
    ("a: *nowhere\n", "the alias *nowhere has no anchor &nowhere"),
    ("x: .inf\n", "'.inf' is not a JSON number"),
    ("x: !secret value\n", "the tag !secret is not supported"),
    ("? [a, b]\n: c\n", "a mapping key must be a plain value"),
    ("a: [1, 2\n", "line 2, column 1: is not valid YAML: did not find expected ',' or ']'"),
    ("---\na: 1\n---\nb: 1\nb: 2\n", "document 2, line 5"),
])  # fmt: skip
def test_problems_name_the_file_document_and_line(text: str, words: str) -> None:
    with pytest.raises(LoadError) as refused:
        parse_documents(text, "bad.yaml")
    assert str(refused.value).startswith("bad.yaml: ") and words in str(refused.value)


def test_duplicates_can_be_warnings() -> None:
    notes: list[str] = []
    assert parse_documents("a: 1\na: 2\n", "d.yaml", on_duplicate=notes.append) == [{"a": 2}]
    assert notes == ["d.yaml: document 1, line 2, column 1: the key 'a' appears twice in the same mapping; the last "
                     "one is used."]


def test_each_limit_is_named() -> None:
    small = Limits(max_bytes=100, max_documents=2, max_depth=3, max_alias_nodes=10)
    cases = {
        "a: " + "x" * 200: "(size limit)",
        "---\na: 1\n---\na: 1\n---\na: 1\n": "more than 2 YAML documents in one file (document count limit)",
        "a: [[[1]]]\n": "nested deeper than 3 levels (nesting depth limit)",
        "a: &a [1, 2, 3, 4]\nb: [*a, *a, *a]\n": "aliases expand this document by more than 10 nodes",
    }
    for text, words in cases.items():
        with pytest.raises(LoadError, match=r"^l\.yaml: ") as refused:
            parse_documents(text, "l.yaml", small)
        assert words in str(refused.value), text


def test_long_strings_count_against_alias_expansion() -> None:
    text = "s: &s " + "x" * 6400 + "\nmany: [" + ", ".join(["*s"] * 1000) + "]\n"
    with pytest.raises(LoadError, match="alias expansion limit"):
        parse_documents(text, "s.yaml")
