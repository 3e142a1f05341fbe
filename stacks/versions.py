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
    for name, image in images.items():
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            raise ValueError(f"versions.images.{name}: {image!r} must be pinned to a tag other than latest")
    return Versions(images=images, charts={k: Chart(**v) for k, v in charts.items()}, managed=managed)
