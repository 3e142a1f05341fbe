"""Whether a container image reference is pinned (a digest, or an explicit tag that does not float)."""
from __future__ import annotations

FLOATING_TAGS = ("latest", "stable", "edge", "main", "master", "nightly")


def unpinned_reason(image: object, floating: tuple[str, ...] | list[str] = FLOATING_TAGS) -> str | None:
    """None when pinned, else why not (e.g. "no tag (implies :latest)")."""
    if not isinstance(image, str) or not image.strip():
        return "no image reference"
    if "@sha256:" in image:
        return None
    if "${" in image:
        return "the image is an interpolated variable, so the version is decided at deploy time"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "no tag (implies :latest)"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in {t.lower() for t in floating}:
        return f"floating tag :{tag}"
    return None
