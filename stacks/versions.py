"""versions.yaml (every image, chart and managed-service version), with a stack's overrides applied."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

VERSIONS_FILE = Path(__file__).resolve().parent.parent / "versions.yaml"


@dataclass(frozen=True)
class Chart:
    repo: str
    chart: str
    version: str


@dataclass(frozen=True)
class Versions:
    images: dict[str, str]
    charts: dict[str, Chart]
    managed: dict[str, str]

    def image(self, name: str) -> str:
        return self.images[name]


FLOATING_TAG = "latest"


def unpinned(images: dict[str, str]) -> list[str]:
    """Names of images that float: no tag and no digest, or the `latest` tag."""
    def floats(image: str) -> bool:
        if "@sha256:" in image:
            return False
        name = image.rsplit("/", 1)[-1]
        return ":" not in name or name.rsplit(":", 1)[1] == FLOATING_TAG
    return [name for name, image in images.items() if floats(image)]


@lru_cache(maxsize=1)
def _pinned() -> dict:
    return yaml.safe_load(VERSIONS_FILE.read_text())


def resolve(overrides=None) -> Versions:
    """The pinned versions, with `dataplatform:versions` overrides from the stack applied on top."""
    pinned = _pinned()
    images = {**pinned["images"], **(overrides.images if overrides else {})}
    charts = {k: {**v} for k, v in pinned["charts"].items()}
    for name, override in (overrides.charts if overrides else {}).items():
        charts.setdefault(name, {}).update(override)
    managed = {**pinned["managed"], **(overrides.managed if overrides else {})}
    for name in unpinned(images):
        raise ValueError(f"versions.images.{name}: {images[name]!r} must be pinned to a version tag or digest")
    return Versions(images=images, charts={k: Chart(**v) for k, v in charts.items()}, managed=managed)
