"""Which hosts the runtime lists, and the agent's runtime-event reports that draw its attention."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from agent.runtime_events import FileTail, RuntimeEventWatch
from berth.containers import EVENT_STREAMS, RuntimeEvent
from berth.objects import Obj
from master.runtime.attention import Attention, pod_settled
from tests.harness import wait_until


def running_pod(**status: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]},
            "status": {"phase": "Running", "podIP": "10.88.0.2",
                       "containerStatuses": [{"name": n, "state": {"running": {"startedAt": "1"}}}
                                             for n in ("a", "b")], **status}}


def test_a_new_leader_lists_all_then_only_marked_unsettled_or_stale_hosts() -> None:
    woken: list[int] = []
    attention = Attention(resync_seconds=10)
    attention.subscribe(lambda: woken.append(1))
    nodes = ["h1", "h2", "h3"]
    assert attention.take_due(nodes, now=0) == {"h1", "h2", "h3"}  # nothing known yet
    for node in nodes:
        attention.listed(node, now=0, settled=node != "h3")
    assert attention.take_due(nodes, now=1) == {"h3"}  # unsettled: looked at every round
    attention.listed("h3", now=1, settled=True)
    assert attention.take_due(nodes, now=2) == set()  # an idle cluster is not listed
    attention.mark(["h2"])
    assert woken and attention.take_due(nodes, now=3) == {"h2"}  # the mark is consumed
    attention.listed("h2", now=3, settled=True)
    assert attention.take_due(nodes, now=4) == set()
    assert attention.take_due(nodes, now=10) == {"h1"}  # the resync: h1 last listed at 0
    attention.listed("h1", now=10, settled=True)
    attention.mark(["gone"])  # a node that is not Ready (or not there) is never due
    assert attention.take_due(nodes, now=10.5) == set()
    attention.mark_all()
    assert attention.take_due(nodes, now=11) == {"h1", "h2", "h3"}


def test_only_finished_or_fully_running_pods_are_settled() -> None:
    assert pod_settled(running_pod())
    assert not pod_settled(running_pod(podIP=""))  # still asking for its address
    assert not pod_settled(running_pod(phase="Pending"))
    waiting = running_pod()
    waiting["status"]["containerStatuses"][1]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert not pod_settled(waiting)  # a back-off ends by itself
    one_missing = running_pod()
    one_missing["status"]["containerStatuses"].pop()
    assert not pod_settled(one_missing)
    terminating = running_pod()
    terminating["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    assert not pod_settled(terminating)  # its grace runs out by itself
    assert pod_settled(running_pod(phase="Failed", containerStatuses=[]))
    assert pod_settled(running_pod(phase="Succeeded"))


def test_podman_and_docker_events_parse_to_the_same_event() -> None:
    podman = ('{"ContainerExitCode":137,"ID":"b43b","Image":"localhost/busybox:lab","Name":"c3",'
              '"Status":"died","Time":"2026-11-26T21:09:57Z","Type":"container",'
              '"Attributes":{"berth.managed":"true"}}')
    docker = ('{"status":"die","id":"b43b","from":"localhost/busybox:lab","Type":"container","Action":"die",'
              '"Actor":{"ID":"b43b","Attributes":{"berth.managed":"true","exitCode":"137","name":"c3"}},'
              '"scope":"local","time":1795000000}')
    assert EVENT_STREAMS["podman"].parse(podman) == RuntimeEvent("c3", "died", 137)
    assert EVENT_STREAMS["docker"].parse(docker) == RuntimeEvent("c3", "die", 137)
    assert EVENT_STREAMS["podman"].parse(podman.replace('"died"', '"exec"')) is None  # no change to a listing
    assert EVENT_STREAMS["podman"].parse("not json") is None
    assert EVENT_STREAMS["docker"].parse('{"Type":"image","Action":"pull"}') is None
    assert EVENT_STREAMS["podman"].command() == ["podman", "events", "--filter", "label=berth.managed=true",
                                                 "--format", "json"]


class _ScriptedSource:
    """An event stream that is a script: its lines, then it ends after a while."""

    def __init__(self, lines: list[str]) -> None:
        self.script = lines

    def lines(self, stop: threading.Event) -> Iterator[str]:
        yield from self.script
        stop.wait(0.6)


class _Masters:
    def __init__(self) -> None:
        self.reports: list[tuple[str, Obj]] = []
        self.lock = threading.Lock()

    def call(self, method: str, path: str, body: Obj) -> Any:
        with self.lock:
            self.reports.append((path, body))
        return {}


def test_the_agent_reports_a_burst_at_once_and_follows_a_stream_that_ended() -> None:
    mine = '"Attributes":{"berth.managed":"true"}'
    died = '{"Type":"container","Status":"died","Name":"c1","ContainerExitCode":3,' + mine + '}'
    removed = '{"Type":"container","Status":"remove","Name":"c2",' + mine + '}'
    masters = _Masters()
    told = []
    watch = RuntimeEventWatch(masters, "h1", "podman",  # type: ignore[arg-type]
                              _ScriptedSource([died, "exec noise", removed]),  # type: ignore[arg-type]
                              gather_seconds=0.3, restart_seconds=0.2, changed=lambda: told.append(1))
    watch.start()
    try:
        wait_until(lambda: len(masters.reports) >= 2, 15, what="a report per stream start")
    finally:
        watch.stop()
    path, first = masters.reports[0]
    assert path == "/api/v1/nodes/h1/runtime-events"
    assert first["events"] == [{"container": "", "action": "listening"},
                               {"container": "c1", "action": "died", "exitCode": 3},
                               {"container": "c2", "action": "remove"}]
    assert masters.reports[1][1]["events"][0]["action"] == "listening"  # the stream was started again
    assert len(told) >= 2  # each batch told to the usage readings (they list the containers again)


def test_events_are_followed_without_a_child_process(tmp_path: Path) -> None:
    """The events file is read by the agent itself: no `podman events` child (it cost 32 MB), so
    nothing is left behind when the agent is killed, and a Berth container's event is reported."""
    events = tmp_path / "events.log"
    events.write_text("")
    masters = _Masters()
    source = FileTail(events, poll_seconds=0.01)
    watch = RuntimeEventWatch(masters, "h1", "podman", source, gather_seconds=0.05)  # type: ignore[arg-type]
    watch.start()
    try:
        assert source.opened.wait(10)
        with events.open("a") as out:
            out.write('{"Type":"container","Status":"start","Name":"other","Attributes":{}}\n'
                      '{"Type":"container","Status":"start","Name":"c9","Attributes":{"berth.managed":"true"}}\n')
        wait_until(lambda: any(e["container"] == "c9" for _, body in masters.reports for e in body["events"]),
                   15, what="the event reported")
        assert psutil.Process().children(recursive=True) == []
    finally:
        watch.stop()
    assert not any(e["container"] == "other" for _, body in masters.reports for e in body["events"])

