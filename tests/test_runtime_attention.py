"""Which hosts the runtime lists, and the agent's runtime-event reports that draw its attention."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil

from agent.runtime_events import RuntimeEventWatch
from berth.containers import EVENT_STREAMS, PodmanEvents, RuntimeEvent
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


class _ScriptedRuntime(PodmanEvents):
    """A runtime whose event stream is a script: two events, a line to ignore, then it ends."""

    def __init__(self, script: str) -> None:
        self.script = script

    def command(self) -> list[str]:
        return ["sh", "-c", self.script]


class _Masters:
    def __init__(self) -> None:
        self.reports: list[tuple[str, Obj]] = []
        self.lock = threading.Lock()

    def call(self, method: str, path: str, body: Obj) -> Any:
        with self.lock:
            self.reports.append((path, body))
        return {}


def test_the_agent_reports_a_burst_at_once_and_follows_a_stream_that_ended() -> None:
    died = '{"Type":"container","Status":"died","Name":"c1","ContainerExitCode":3}'
    removed = '{"Type":"container","Status":"remove","Name":"c2"}'
    masters = _Masters()
    watch = RuntimeEventWatch(masters, "h1", "podman", gather_seconds=0.3,  # type: ignore[arg-type]
                              restart_seconds=0.2)
    watch.events = _ScriptedRuntime(f"echo '{died}'; echo 'exec noise'; echo '{removed}'; sleep 0.6")
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


def test_the_event_stream_ends_when_the_agent_is_killed() -> None:
    """SIGKILL gives the agent no chance to stop its `podman events`: the kernel must end it."""
    program = ("import sys, time; from agent.runtime_events import RuntimeEventWatch; "
               "from berth.containers import PodmanEvents\n"
               "class Sleeper(PodmanEvents):\n    def command(self): return ['sleep', '600']\n"
               "class Masters:\n    def call(self, *args): return {}\n"
               "w = RuntimeEventWatch(Masters(), 'h1', 'podman'); w.events = Sleeper(); w.start()\n"
               "time.sleep(600)\n")
    agent = subprocess.Popen([sys.executable, "-c", program], cwd=Path(__file__).resolve().parent.parent)
    try:
        stream = wait_until(lambda: next(iter(psutil.Process(agent.pid).children(recursive=True)), None), 15,
                            what="the event stream started")
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(timeout=10)
        wait_until(lambda: not stream.is_running() or stream.status() == psutil.STATUS_ZOMBIE, 15,
                   what="the stream gone with the agent")
    finally:
        if agent.poll() is None:
            agent.kill()
