"""The next image tag the bump modal proposes (pure)."""

from __future__ import annotations

import re

_SEMVER = re.compile(r"^(?P<pre>v?)(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?P<rest>.*)$")


def split_image(image: str) -> tuple[str, str]:
    """``repo/name:tag`` -> ``("repo/name", "tag")``; a port in the registry host is not a tag."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, ""
    return name, tag


def next_image(image: str) -> str:
    """The image with its patch version bumped: ``podinfo:3.1.0`` -> ``podinfo:3.1.1``.

    Tags that are not ``X.Y.Z`` are returned unchanged, for the user to edit.
    """
    name, tag = split_image(image)
    match = _SEMVER.match(tag)
    if not match:
        return image
    patch = int(match["patch"]) + 1
    return f"{name}:{match['pre']}{match['major']}.{match['minor']}.{patch}"


def tag(image: str) -> str:
    """Just the tag (``3.1.1``), or the whole image when it has none."""
    return split_image(image)[1] or image
