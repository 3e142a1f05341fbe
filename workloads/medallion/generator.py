"""A shop that produces believable events: customers sign up and edit their profile, visitors browse in sessions
that narrow down a funnel (page view -> product view -> cart -> checkout -> purchase), purchases become orders with
lines, and orders move on (paid, shipped, sometimes cancelled). A small share of events is sent twice, as real
sources do on retries, which silver deduplicates.

Deterministic for a seed. `schema_version=2` adds optional fields (`coupon_code` on orders, `referrer` on
clickstream) to show schema evolution end to end.
"""
from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from workloads.medallion.tables import TOPIC_KEYS, TOPICS

CATEGORIES = {"electronics": 180.0, "books": 18.0, "home": 45.0, "garden": 35.0, "fashion": 40.0,
              "toys": 25.0, "sports": 55.0, "beauty": 20.0, "grocery": 8.0, "automotive": 70.0}
COUNTRIES = ["DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "SE", "CA"]
FIRST = ["Ada", "Alan", "Grace", "Linus", "Margaret", "Edsger", "Barbara", "Ken", "Frances", "Donald", "Radia",
         "John", "Katherine", "Dennis", "Hedy", "Tim"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Dijkstra", "Liskov", "Thompson", "Allen", "Knuth",
        "Perlman", "Backus", "Johnson", "Ritchie", "Lamarr", "Berners-Lee"]
DEVICES = ["mobile", "desktop", "tablet"]
PAYMENTS = ["card", "paypal", "invoice", "apple_pay"]
REFERRERS = ["search", "newsletter", "social", "direct", "affiliate"]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Event:
    topic: str
    key: str
    value: dict[str, Any] | bytes  # bytes: sent as is (tests send malformed records this way)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Shop:
    """The simulation; iterate `events()` for an endless, time-ordered stream."""

    def __init__(self, seed: int = 7, schema_version: int = 1, duplicate_rate: float = 0.005,
                 products: int = 500) -> None:
        self.rng = random.Random(seed)
        self.schema_version = schema_version
        self.duplicate_rate = duplicate_rate
        self.clock = START
        self.customers: list[str] = []
        self.products = []
        names = list(CATEGORIES)
        for i in range(products):
            category = names[i % len(names)]
            price = round(CATEGORIES[category] * self.rng.lognormvariate(0, 0.5), 2)
            self.products.append((f"sku-{i:05d}", category, max(price, 0.5)))
        self.orders = 0
        self.sessions = 0

    def _id(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _later(self, t: datetime, mean_seconds: float) -> datetime:
        return t + timedelta(seconds=self.rng.expovariate(1 / mean_seconds))

    def _event(self, entity: str, at: datetime | None = None, **fields: Any) -> Event:
        value = {"event_id": self._id(), "event_time": _iso(at or self.clock), **fields}
        return Event(TOPICS[entity], str(value[TOPIC_KEYS[entity]]), value)

    def _new_customer(self) -> Event:
        customer_id = f"c-{len(self.customers) + 1:07d}"
        self.customers.append(customer_id)
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        return self._event("customers", event_type="created", customer_id=customer_id,
                           email=f"{first}.{last}{len(self.customers)}@example.com".lower(),
                           full_name=f"{first} {last}", country=self.rng.choice(COUNTRIES),
                           segment="business" if self.rng.random() < 0.15 else "consumer")

    def _profile_update(self) -> Event:
        customer_id = self.rng.choice(self.customers)
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        return self._event("customers", event_type="updated", customer_id=customer_id,
                           email=f"{first}.{last}.{customer_id}@example.org".lower(), full_name=f"{first} {last}",
                           country=self.rng.choice(COUNTRIES), segment=self.rng.choice(["consumer", "business"]))

    def _session(self) -> Iterator[Event]:
        rng = self.rng
        self.sessions += 1
        session_id = f"s-{self.sessions:09d}"
        customer_id = rng.choice(self.customers) if self.customers and rng.random() < 0.7 else None
        device = rng.choice(DEVICES)
        extra = {"referrer": rng.choice(REFERRERS)} if self.schema_version >= 2 else {}
        at = self.clock

        def click(action: str, page: str, product: str | None = None) -> Event:
            nonlocal at
            at = self._later(at, 20)
            return self._event("clickstream", at, session_id=session_id, customer_id=customer_id, action=action,
                               page=page, product_id=product, device=device, **extra)

        yield click("page_view", "/")
        viewed = []
        if rng.random() < 0.75:
            for _ in range(rng.randint(1, 4)):
                product = rng.choice(self.products)
                viewed.append(product)
                yield click("product_view", f"/p/{product[1]}/{product[0]}", product[0])
        cart = [p for p in viewed if rng.random() < 0.45]
        for product in cart:
            yield click("add_to_cart", "/cart", product[0])
        if not cart or rng.random() > 0.6:
            return
        yield click("checkout", "/checkout")
        if customer_id is None or rng.random() > 0.8:
            return
        yield click("purchase", "/checkout/done")
        yield from self._order(customer_id, cart, at)

    def _order(self, customer_id: str, cart: list[tuple[str, str, float]], at: datetime) -> Iterator[Event]:
        rng = self.rng
        self.orders += 1
        order_id = f"o-{self.orders:09d}"
        lines, total = [], 0.0
        for number, (product_id, category, price) in enumerate(cart, start=1):
            quantity = rng.choice([1, 1, 1, 2, 2, 3])
            discount = rng.choice([None, None, None, 0.1, 0.2])
            total += quantity * price * (1 - (discount or 0))
            lines.append(dict(order_id=order_id, line_number=number, product_id=product_id, category=category,
                              quantity=quantity, unit_price=price, discount=discount))
        order = dict(order_id=order_id, customer_id=customer_id, currency="EUR", total_amount=round(total, 2),
                     item_count=sum(line["quantity"] for line in lines), payment_method=rng.choice(PAYMENTS))
        if self.schema_version >= 2:
            order["coupon_code"] = rng.choice([None, None, "WELCOME10", "SPRING"])
        yield self._event("orders", at, status="placed", **order)
        for line in lines:
            yield self._event("order_lines", at, **line)
        at = self._later(at, 300)
        if rng.random() < 0.05:
            yield self._event("orders", at, status="cancelled", **order)
            return
        yield self._event("orders", at, status="paid", **order)
        if rng.random() < 0.9:
            yield self._event("orders", self._later(at, 36000), status="shipped", **order)

    def events(self) -> Iterator[Event]:
        rng = self.rng
        while True:
            self.clock = self._later(self.clock, 2.5)
            if not self.customers or rng.random() < 0.08:
                event = self._new_customer()
            elif rng.random() < 0.02:
                event = self._profile_update()
            else:
                for event in self._session():
                    yield event
                    if rng.random() < self.duplicate_rate:
                        yield event
                continue
            yield event


def produce(events: int, rate: float | None = None, seed: int = 7, schema_version: int = 1,
            progress: Any = None) -> dict[str, int]:
    """Send `events` events of the shop to Kafka, at most `rate` per second; returns counts per topic."""
    from itertools import islice

    stream = islice(Shop(seed=seed, schema_version=schema_version).events(), events)
    return send(stream, rate=rate, progress=progress)


def send(events: Iterable[Event], rate: float | None = None, progress: Any = None,
         delivered: list[tuple[str, int, int]] | None = None) -> dict[str, int]:
    """Send events with the idempotent producer; fails if any is not acknowledged. `delivered`, when given,
    receives the (topic, partition, offset) of every event as the broker acknowledged it."""
    from confluent_kafka import KafkaException

    from workloads.medallion.kafka_io import ensure_topics, producer

    ensure_topics()
    out = producer()
    failures: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))
        elif delivered is not None:
            delivered.append((msg.topic(), msg.partition(), msg.offset()))

    counts = {topic: 0 for topic in TOPICS.values()}
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    started = time.monotonic()
    sent = 0
    for event in events:
        payload = event.value if isinstance(event.value, bytes) else dumps(event.value).encode()
        while True:
            try:
                out.produce(event.topic, payload, key=event.key.encode(), on_delivery=on_delivery)
                break
            except BufferError:
                out.poll(0.05)
        counts[event.topic] = counts.get(event.topic, 0) + 1
        sent += 1
        if sent % 1000 == 0:
            out.poll(0)
            if progress:
                progress(sent)
        if rate and (ahead := sent / rate - (time.monotonic() - started)) > 0.01:
            time.sleep(ahead)
    remaining = out.flush(60)
    if remaining or failures:
        raise KafkaException(f"{remaining} events undelivered, {len(failures)} failed: {failures[:3]}")
    if progress and sent % 1000:
        progress(sent)
    return counts
