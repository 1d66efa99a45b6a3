"""The agent's informer against real masters: one list, then a watch that follows every change,
and resumes from its last revision on another master when the one it streams from dies."""

from __future__ import annotations

import threading

from agent.informer import Informer
from berth.client import Client
from tests.harness import TOKENS, MasterCluster, wait_until


def node(name: str) -> dict:
    return {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"address": "10.0.0.1"}}


def test_the_informer_follows_changes_and_resumes_on_another_master(own_cluster: MasterCluster) -> None:
    admin = own_cluster.session()
    assert admin.post(own_cluster.url(0, "/api/v1/nodes"), json=node("before"), timeout=10).status_code == 201
    seen: list[set[str]] = []
    lock = threading.Lock()

    def changed(objects: dict) -> None:
        with lock:
            seen.append({name for _, name in objects})

    def latest() -> set[str]:
        with lock:
            return seen[-1] if seen else set()

    urls = [m.api_url for m in own_cluster.masters]
    informer = Informer(Client(urls, TOKENS["admin"][1], ca_file=str(own_cluster.ca_file)), "Node", changed)
    informer.start()
    try:
        wait_until(lambda: latest() == {"before"}, 15, what="the first list")
        added = admin.post(own_cluster.url(1, "/api/v1/nodes"), json=node("added"), timeout=10)
        assert added.status_code == 201, added.text
        wait_until(lambda: latest() == {"before", "added"}, 15, what="an addition through the watch")
        own_cluster.kill(0)  # the client's first URL: the stream it holds breaks
        # written through a survivor once a leader is there again (an election if 0 led)
        wait_until(lambda: admin.delete(own_cluster.url(2, "/api/v1/nodes/before"), timeout=10).status_code
                   in (200, 404), 30, interval=0.3, what="a deletion after the kill")
        wait_until(lambda: admin.post(own_cluster.url(2, "/api/v1/nodes"), json=node("later"), timeout=10)
                   .status_code in (201, 409), 30, interval=0.3, what="a creation after the kill")
        wait_until(lambda: latest() == {"added", "later"}, 30, what="the changes made while resuming")
    finally:
        informer.stop()
