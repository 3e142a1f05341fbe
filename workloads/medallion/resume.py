"""Where the ingest job resumes in a topic: at the offsets committed with the bronze data, unless the topic is no
longer the one those offsets count in.

A topic deleted and created again, or the embedded (in-memory) broker restarted, numbers its messages from 0 again:
resuming at the old offsets would skip every message below them. The topic's id (KIP-516; Kafka >= 2.8 and Tansu
report one) tells: a new id is a new topic. Without ids (older brokers, progress committed before ids were
recorded), a committed offset past a partition's end gives it away. A new topic is read from the beginning in a
new offset epoch, committed with its first batch, so the exactly-once bookkeeping (skip the rows at offsets
already held) compares offsets within one epoch only.

The quarantine's progress counts too: it is committed before bronze, so after a crash between the two it may
already have started the new epoch, which must then be continued rather than started again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import structlog

from workloads.medallion.state import Progress

log = structlog.get_logger()


@dataclass(frozen=True)
class Resume:
    """Where to start each partition (None: the beginning) and the progress the first batch commits."""
    starts: dict[int, int | None]
    progress: Progress


def _same_topic(held: Progress, topic_id: str | None, partitions: list[int], high: Callable[[], dict[int, int]]
                ) -> bool:
    if held.topic_id and topic_id:
        return held.topic_id == topic_id
    return all(p in partitions and offset <= high()[p] for p, offset in held.offsets.items())


def plan(topic: str, partitions: list[int], topic_id: str | None, bronze: Progress | None,
         quarantine: Progress | None, low: Callable[[int], int], high: Callable[[], dict[int, int]],
         out_of_range: frozenset[int] = frozenset()) -> Resume:
    """Decide where to resume `topic` from what bronze and the quarantine hold of it and what the broker reports:
    its id, a partition's first offset (`low`), every partition's end (`high`: asked only when needed, it costs a
    fetch), and the partitions whose assigned offset it refused."""
    high = cache(high)

    held = [h for h in (bronze, quarantine) if h and h.offsets]
    top = max((h.epoch for h in held), default=0)
    if bronze and bronze.offsets and _same_topic(bronze, topic_id, partitions, high):
        starts: dict[int, int | None] = {}
        epoch = bronze.epoch
        for p in partitions:
            offset = bronze.offsets.get(p)
            if offset is None:
                starts[p] = None
                continue
            if offset < (first := low(p)):  # deleted by retention before it was read: nothing to do but say so
                log.warning("messages deleted by the broker before they were ingested", topic=topic, partition=p,
                            offsets=f"{offset}..{first - 1}")
                offset = first
            elif p in out_of_range and offset > (end := high()[p]):
                # The same topic, but the partition lost messages (an unclean leader election): what it gets from
                # its end on is new, so it is read from there in a new epoch (other partitions resume as they are).
                log.warning("partition ends before the committed offset: reading on from its end in a new offset "
                            "epoch", topic=topic, partition=p, committed=offset, end=end)
                offset, epoch = end, top + 1
            starts[p] = offset
        return Resume(starts, Progress({p: o for p, o in starts.items() if o is not None}, epoch,
                                       topic_id or bronze.topic_id))

    if quarantine and quarantine.offsets and quarantine.epoch == top and \
            _same_topic(quarantine, topic_id, partitions, high):
        epoch = top  # the quarantine already started this topic's current epoch (crash before the bronze commit)
    else:
        epoch = top + 1 if held else 0
    if bronze and bronze.offsets:
        log.warning("topic is not the one the committed offsets count in: reading it from the beginning in a new "
                    "offset epoch", topic=topic, committed_topic_id=bronze.topic_id, topic_id=topic_id,
                    committed_offsets=bronze.offsets, committed_epoch=bronze.epoch, epoch=epoch,
                    why="new topic id" if bronze.topic_id and topic_id else "committed offsets past the end")
    return Resume({p: None for p in partitions}, Progress({}, epoch, topic_id))
