"""A stand-in for the hosts in masters-only tests and benchmarks: bound pods start and become Ready.

Masters run without their runtime controller there (no hosts, no SSH). This thread plays every
host through the API, as the runtime would write: each `period` it lists the pods, gives each
bound pod it has not started a Running, Ready status (or, when `never_ready(image)` says so, a
Pending one waiting with ErrImagePull, as a missing image would), and removes at once the pods
marked for deletion, as the runtime does once their containers have stopped. Every request
goes to the first master that answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from berth.clock import utc_now


def started_status(pod: dict[str, Any], ready: bool) -> dict[str, Any]:
    now = utc_now()
    containers = pod["spec"]["containers"]
    state = {"running": {"startedAt": now}} if ready else {"waiting": {"reason": "ErrImagePull"}}
    return {"phase": "Running" if ready else "Pending", "hostIP": "10.250.0.99", "startTime": now,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "reason": "ContainersReady" if ready else "ContainersNotReady",
                            "lastTransitionTime": now}],
            "containerStatuses": [{"name": c["name"], "image": c["image"], "ready": ready, "restartCount": 0,
                                   "state": state} for c in containers]}


class FakeKubelet:
    def __init__(self, api_urls: list[str], token: str, period: float = 0.1,
                 never_ready: Callable[[str], bool] = lambda image: False,
                 ca_file: Path | None = None) -> None:
        """`ca_file`: the masters' CA (LocalMasters.ca_file)."""
        self.api_urls = list(api_urls)
        self.period = period
        self.never_ready = never_ready
        self.session = requests.Session()
        self.session.verify = str(ca_file) if ca_file else True
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would win over `verify`
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._done: set[str] = set()  # uids given a status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kubelet", daemon=True)

    def __enter__(self) -> FakeKubelet:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.session.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        for url in self.api_urls:
            try:
                answer = self.session.request(method, url + path, timeout=5, **kwargs)
            except requests.RequestException:
                continue
            if answer.status_code != 503:
                return answer
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            listed = self._request("GET", "/api/v1/pods")
            if listed is None or listed.status_code != 200:
                continue
            for pod in listed.json()["items"]:
                self._play(pod)

    def _play(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        if meta.get("deletionTimestamp"):
            self._request("DELETE", f"{path}?gracePeriodSeconds=0")
            return
        if not pod["spec"].get("nodeName") or meta["uid"] in self._done:
            return
        ready = not any(self.never_ready(c["image"]) for c in pod["spec"]["containers"])
        answer = self._request("PUT", f"{path}/status", json={
            "metadata": {"resourceVersion": meta["resourceVersion"]}, "status": started_status(pod, ready)})
        if answer is not None and answer.status_code == 200:
            self._done.add(meta["uid"])
