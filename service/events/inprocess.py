"""In-process event bus: the embedded mode's broker, and an honest test double."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from service.events.base import OutgoingEvent

logger = logging.getLogger(__name__)

Subscriber = Callable[[OutgoingEvent], None]
ALL = "*"


class InProcessPublisher:
    """Delivers each event synchronously to the subscribers of its topic (and of "*")."""

    kind = "inprocess"
    max_in_flight = 1  # events handed over at once by the relay
    crosses_processes = False

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        self._subscribers[topic].append(subscriber)

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        self._subscribers[topic].remove(subscriber)

    async def publish(self, event: OutgoingEvent) -> None:
        for subscriber in (
            *self._subscribers.get(event.topic, ()),
            *self._subscribers.get(ALL, ()),
        ):
            try:
                subscriber(event)
            except Exception:  # a subscriber's bug must not block the outbox
                logger.exception("subscriber failed", extra={"action": "bus.subscriber_failed"})

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()
