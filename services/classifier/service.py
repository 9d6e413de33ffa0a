"""The classifier service: tags customer messages with a topic.

A faust-streaming app (`app.py`) runs one agent (`agent.py`) over `inbox.timeline`: customer
messages taken in batches, classified in one vectorised call (`tagging.py`), a tag on
`classifier.tags` for each message whose probability reaches the threshold. On Apache Kafka the
tags and the consumed offsets commit in one transaction (`exactly_once`); on a broker without
transactions (Tansu) the app runs `at_least_once` and the tags' deterministic ids let the router
apply a repeated one once.

The service frame (`shared.service`) keeps its part: the side door (/metrics, /healthz,
/readyz; faust's own web server is off), the topics, readiness, and the stop on SIGTERM, which
lets the batch in flight commit before the app stops.
"""

from __future__ import annotations

from services.classifier.agent import TaggingAgent
from services.classifier.app import create_app
from services.classifier.model import load_model
from services.classifier.tagging import Tagger
from shared.service import Service


def build(service: Service) -> None:
    tagger = Tagger(load_model(), service.settings.classifier_threshold)
    app = create_app(service.settings, service.name, group_id=f"inbox-{service.name}")
    agent = TaggingAgent(app, tagger, service.settings, service.name, service.health)
    service.background(agent.start)
    service.on_stop(agent.stop)
