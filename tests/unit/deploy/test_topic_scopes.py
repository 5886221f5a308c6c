"""The Kubernetes pub/sub component lets both apps publish every topic the service writes to
its outbox: a topic missing from an app's publishingScopes stops that app's relay at the row
(Dapr answers 403) until the other app's relay happens to send it."""

from __future__ import annotations

from pathlib import Path

import yaml

from service.api.asyncapi import published_topics
from service.domain.events import DEAD_LETTER_TOPIC

PUBSUB = Path(__file__).resolve().parents[3] / "k8s" / "dapr" / "pubsub.yaml"


def scopes(name: str) -> dict[str, set[str]]:
    """An app-scoped topic list of the component (`app=t1,t2;app2=…`), by app id."""
    component = yaml.safe_load(PUBSUB.read_text())
    value = next(m["value"] for m in component["spec"]["metadata"] if m["name"] == name)
    apps: dict[str, set[str]] = {}
    for part in str(value).split(";"):
        app, _, topics = part.strip().partition("=")
        apps[app] = {t.strip() for t in topics.split(",") if t.strip()}
    return apps


def test_both_apps_may_publish_every_topic_of_the_outbox() -> None:
    published = set(published_topics())
    assert published  # the enums were found
    allowed = scopes("publishingScopes")
    for app in ("operations-api", "operations-worker"):
        assert published - allowed[app] == set(), app


def test_the_worker_may_publish_dead_letters_and_nothing_unknown() -> None:
    allowed = scopes("publishingScopes")
    assert DEAD_LETTER_TOPIC in allowed["operations-worker"]
    known = {*published_topics(), DEAD_LETTER_TOPIC}
    for app, topics in allowed.items():
        assert topics - known == set(), app  # a typo'd topic would be a silent hole
