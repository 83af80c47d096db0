"""The shipped lessons as data: six or more, each complete, and clear errors for a broken lesson file."""

from __future__ import annotations

from pathlib import Path

import pytest

from canarylab.errors import UserError
from canarylab.keymap import BY_ID
from canarylab.learn.model import KEY_IDS, find_lesson, load_lesson, load_lessons

REQUIRED_TOPICS = ["seed", "break", "gates", "bluegreen", "metric", "ci"]


def test_the_package_ships_the_six_lessons_in_order_each_with_a_summary_and_questions() -> None:
    lessons = load_lessons()
    assert [lesson.id for lesson in lessons] == REQUIRED_TOPICS
    assert [lesson.number for lesson in lessons] == [1, 2, 3, 4, 5, 6]
    for lesson in lessons:
        assert lesson.summary and lesson.questions, lesson.id
        for step in lesson.steps:
            assert step.explain and step.do and step.hint and step.auto, (lesson.id, step.title)
            for key in step.keys:  # every key a step names has a kubectl/Flagger equivalent
                from canarylab.learn.tracker import DEFAULT_EQUIVALENTS

                assert step.equivalents.get(key) or DEFAULT_EQUIVALENTS.get(key), (lesson.id, step.title, key)


def test_lesson_key_ids_are_the_dashboards() -> None:
    dashboard = {k for k in BY_ID if k not in ("filter", "export", "quit")}
    assert set(KEY_IDS) - {"apply", "lessons"} == dashboard


def test_lessons_are_found_by_number_or_id() -> None:
    lessons = load_lessons()
    assert find_lesson(lessons, "3").id == "gates"
    assert find_lesson(lessons, "bluegreen").number == 4
    with pytest.raises(UserError, match=r"no lesson 'nope': give a number or an id \(1 seed, 2 break"):
        find_lesson(lessons, "nope")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "07-mine.yaml"
    path.write_text(text)
    return path


LESSON = """
id: mine
title: Mine
goal: A goal.
steps:
  - title: One
    explain: Why.
    do: {say: press b, keys: [bump]}
    hint: A hint.
    check: {phase: Succeeded}
    auto: [{wait: 1s}]
summary: Learned.
questions: ["Why?"]
"""


def test_a_valid_lesson_file_loads(tmp_path: Path) -> None:
    lesson = load_lesson(_write(tmp_path, LESSON))
    assert lesson.number == 7 and lesson.steps[0].keys == ("bump",) and lesson.steps[0].hint_after == 45


@pytest.mark.parametrize(("change", "message"), [
    (("phase: Succeeded", "phaze: Succeeded"), r"07-mine.yaml.steps\[0\].check: unknown check 'phaze'"),
    (("keys: [bump]", "keys: [bumpp]"), r"steps\[0\].do.keys: unknown key id 'bumpp'"),
    (("auto: [{wait: 1s}]", "auto: [{jump: 1}]"), r"steps\[0\].auto\[0\]: unknown action 'jump'"),
    (('questions: ["Why?"]', "questions: []"), r"questions: a lesson ends with a question or two"),
    (("    hint: A hint.\n", "    hint: A hint.\n    hintAfter: soon\n"), r"hintAfter: must be a duration"),
    (("{phase: Succeeded}", "{metric: {name: x}}"), r"check.metric.ok: is required"),
])  # fmt: skip
def test_a_broken_lesson_names_the_file_and_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_lesson(_write(tmp_path, LESSON.replace(*change)))
