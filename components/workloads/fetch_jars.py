"""Fetch the Flink job image's connector jars from Maven Central and verify each one before it enters the image.

Each jar is `group:artifact:version` (versions.yaml `flink_jars`). The checksum Maven Central publishes next to it
is checked (`.sha512` where the project published one, else `.sha1`, which every artifact has), and, when the entry
pins one (`sha256` in versions.yaml), the jar's SHA-256 too: a pin makes the build refuse anything but those exact
bytes, whatever the repository serves. The build log prints every jar's SHA-256 (the value to pin). A failed
download or a mismatch stops the build, naming the jar.

`MAVEN_REPOSITORY` replaces Maven Central (a mirror or proxy with the same layout). Standard library only: the image
build runs this file on its own (`python fetch_jars.py OUT_DIR 'group:artifact:version[=sha256]' ...`, or the specs in
`FLINK_JARS`, space-separated, as the Dockerfile passes its build argument).
"""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CENTRAL = "https://repo1.maven.org/maven2"
TIMEOUT_S = 120


class FetchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "Jar":
        coordinates, _, sha256 = spec.partition("=")
        parts = coordinates.split(":")
        if len(parts) != 3 or not all(parts) or (sha256 and len(sha256) != 64):
            raise FetchError(f"{spec!r}: expected group:artifact:version, optionally =<64 hex sha256>")
        return cls(*parts, sha256=sha256.lower() or None)

    @property
    def file(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repository: str) -> str:
        return f"{repository.rstrip('/')}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file}"


def _get(url: str) -> bytes | None:
    """The body, or None for a 404 (a checksum the project did not publish)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (https or a configured mirror)
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise FetchError(f"{url}: HTTP {exc.code}") from None
    except OSError as exc:
        raise FetchError(f"{url}: {exc}") from None


def fetch(jar: Jar, out: Path, repository: str = CENTRAL) -> str:
    """Download and verify one jar into `out`; returns its SHA-256."""
    url = jar.url(repository)
    body = _get(url)
    if body is None:
        raise FetchError(f"{jar.file}: not found at {url} (check the version in versions.yaml flink_jars)")
    for algorithm in ("sha512", "sha1"):
        published = _get(f"{url}.{algorithm}")
        if published is not None:
            expected = published.decode("ascii", "replace").split()[0].strip().lower()
            actual = hashlib.new(algorithm, body).hexdigest()
            if actual != expected:
                raise FetchError(f"{jar.file}: {algorithm} {actual} does not match the published {expected}")
            break
    else:
        raise FetchError(f"{jar.file}: the repository publishes no .sha512 or .sha1 for it; refusing an "
                         "unverified jar")
    sha256 = hashlib.sha256(body).hexdigest()
    if jar.sha256 is not None and sha256 != jar.sha256:
        raise FetchError(f"{jar.file}: sha256 {sha256} does not match the pinned {jar.sha256} (versions.yaml)")
    out.mkdir(parents=True, exist_ok=True)
    (out / jar.file).write_bytes(body)
    return sha256


def main(argv: list[str]) -> int:
    specs = argv[1:] or os.environ.get("FLINK_JARS", "").split()
    if len(argv) < 1 or not specs:
        print("usage: fetch_jars.py OUT_DIR group:artifact:version[=sha256] ... (or in $FLINK_JARS)", file=sys.stderr)
        return 2
    out, repository = Path(argv[0]), os.environ.get("MAVEN_REPOSITORY") or CENTRAL
    try:
        for jar in (Jar.parse(spec) for spec in specs):
            print(f"{jar.file} sha256={fetch(jar, out, repository)} verified")
    except FetchError as exc:
        print(f"fetch_jars: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
