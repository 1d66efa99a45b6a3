"""The agent's container usage: cgroup files parsed (v1 and v2), and the collector reading a fake
/proc and cgroup tree between two intervals, listing the engine again only on a change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.metrics import MetricsCollector
from agent.usage import CgroupFiles, cgroup_files, cpu_nanoseconds, millicores, working_set
from tests.harness import wait_until

V1 = "".join(f"{i}:{c}:/libpod_parent/libpod-abc\n" for i, c in ((4, "memory"), (2, "cpuacct"), (1, "cpu")))
HYBRID_V1 = V1 + "0::/libpod_parent/libpod-abc\n"
V2 = "0::/machine.slice/libpod-abc.scope\n"


@pytest.mark.parametrize(("text", "expected"), [
    (HYBRID_V1, CgroupFiles(Path("/cg/cpuacct/libpod_parent/libpod-abc/cpuacct.usage"),
                            Path("/cg/memory/libpod_parent/libpod-abc/memory.usage_in_bytes"),
                            Path("/cg/memory/libpod_parent/libpod-abc/memory.stat"), v2=False)),
    (V2, CgroupFiles(Path("/cg/machine.slice/libpod-abc.scope/cpu.stat"),
                     Path("/cg/machine.slice/libpod-abc.scope/memory.current"),
                     Path("/cg/machine.slice/libpod-abc.scope/memory.stat"), v2=True)),
    ("3:pids:/x\n", None),
    ("0::/../../etc\n", None),  # never outside the hierarchy
])
def test_a_containers_cgroup_files(text: str, expected: CgroupFiles | None) -> None:
    assert cgroup_files(text, Path("/cg")) == expected


def test_counters() -> None:
    assert cpu_nanoseconds("1500000000\n", v2=False) == 1_500_000_000
    assert cpu_nanoseconds("usage_usec 2500\nuser_usec 2000\n", v2=True) == 2_500_000
    assert working_set("1000000\n", "cache 5\ntotal_inactive_file 300000\n", v2=False) == 700_000
    assert working_set("100\n", "inactive_file 500\n", v2=True) == 0  # never below nothing
    assert millicores(1_000_000_000, 1_250_000_000, 0.5) == 500  # 0.25 s of CPU in 0.5 s: half a core
    assert millicores(5, 1, 1.0) == 0  # restarted: its counter began again


class Host:
    """A fake host: the engine's listing, /proc/PID/cgroup and the cgroup files."""

    def __init__(self, root: Path) -> None:
        self.proc, self.cgroups, self.listings = root / "proc", root / "cg", 0
        pod = {"berth.managed": "true", "berth.pod-uid": "u1"}
        self.containers = [("app", 11, {**pod, "berth.container": "web"}),
                           ("infra", 12, {**pod, "berth.sandbox": "true"})]
        for cid, pid, _ in self.containers:
            (self.proc / str(pid)).mkdir(parents=True)
            (self.proc / str(pid) / "cgroup").write_text(V1.replace("abc", cid))
            for controller in ("cpuacct", "memory"):
                (self.cgroups / controller / "libpod_parent" / f"libpod-{cid}").mkdir(parents=True)
            self.set(cid, cpu_ns=0, memory=10 << 20)

    def set(self, cid: str, cpu_ns: int, memory: int) -> None:
        (self.cgroups / "cpuacct" / "libpod_parent" / f"libpod-{cid}" / "cpuacct.usage").write_text(
            f"{cpu_ns}\n")
        group = self.cgroups / "memory" / "libpod_parent" / f"libpod-{cid}"
        (group / "memory.usage_in_bytes").write_text(f"{memory}\n")
        (group / "memory.stat").write_text("total_inactive_file 1048576\n")

    def __call__(self, argv: list[str]) -> str:
        self.listings += 1
        return json.dumps([{"Id": cid, "Pid": pid, "Labels": labels} for cid, pid, labels in self.containers])


def test_the_collector_reports_from_the_second_reading_and_lists_only_on_change(tmp_path: Path) -> None:
    host, clock = Host(tmp_path), [100.0]
    collector = MetricsCollector(None, "h1", "podman", run=host, proc=host.proc,  # type: ignore[arg-type]
                                 cgroups=host.cgroups, clock=lambda: clock[0], wall=lambda: 1e9)
    assert collector.sample() == [] and host.listings == 1  # one reading: no CPU figure yet
    clock[0] += 5
    host.set("app", cpu_ns=2_500_000_000, memory=60 << 20)  # 2.5 s of CPU in 5 s
    assert collector.sample() == [{"uid": "u1", "timestamp": 1e9, "window": 5.0, "containers": {
        "web": {"cpuMillicores": 500, "memoryBytes": 59 << 20}}}]
    assert host.listings == 1  # nothing changed: no new listing
    collector.changed()
    clock[0] += 5
    assert len(collector.sample()) == 1 and host.listings == 2


def test_the_events_file_is_followed_across_rotation(tmp_path: Path) -> None:
    """What is written after the agent began to follow, then the whole of a file that replaced it."""
    import threading

    from agent.runtime_events import FileTail

    events = tmp_path / "events.log"
    events.write_text('{"old": 1}\n')
    stop, seen = threading.Event(), []
    tail = FileTail(events, poll_seconds=0.01)

    def follow() -> None:
        for line in tail.lines(stop):
            seen.append(line)
            if len(seen) == 3:
                stop.set()

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        assert tail.opened.wait(5), "the file never opened"
        with events.open("a") as out:
            out.write('{"new": 1}\n{"half"')
        wait_until(lambda: seen == ['{"new": 1}'], 5, interval=0.01, what="the appended line")
        with events.open("a") as out:
            out.write(': 1}\n')
        wait_until(lambda: len(seen) == 2, 5, interval=0.01, what="a line written in two parts")
        rotated = tmp_path / "events.log.new"
        rotated.write_text('{"rotated": 1}\n')
        rotated.replace(events)  # a new file in its place: read from its start
        reader.join(timeout=5)
    finally:
        stop.set()
        reader.join(timeout=5)
    assert seen == ['{"new": 1}', '{"half": 1}', '{"rotated": 1}']


def ready_pod(uid: str, **extra: object) -> dict:
    containers = [{"name": "web", "ports": [{"name": "http", "containerPort": 8080}],
                   "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}}]
    ready = [{"type": "Ready", "status": extra.get("ready", "True")}]
    return {"metadata": {"uid": uid, "annotations": extra.get("annotations", {})},
            "spec": {"containers": extra.get("containers", containers)},
            "status": {"podIP": "10.244.0.5", "conditions": ready}}


def test_what_is_timed_and_scraped() -> None:
    from agent.app_metrics import Target, targets

    notes = {"berth.io/response-time-path": "/slow", "berth.io/metrics-port": "9100"}
    noted = ready_pod("u2", annotations=notes)
    assert targets([ready_pod("u1"), noted, ready_pod("u3", ready="False")]) == [
        Target("u1", "10.244.0.5", 8080, "/ready", scrape=False),
        Target("u2", "10.244.0.5", 8080, "/ready", scrape=False),
        Target("u2", "10.244.0.5", 8080, "/slow", scrape=False),  # the readiness probe's port
        Target("u2", "10.244.0.5", 9100, "/metrics", scrape=True)]  # not ready: nothing of u3
    wrong = {"berth.io/response-time-path": "no-slash", "berth.io/metrics-port": "x"}
    bad = ready_pod("u4", annotations=wrong, containers=[{"name": "web"}])
    assert targets([bad]) == []


def test_prometheus_text_and_p90() -> None:
    from agent.app_metrics import p90, parse_prometheus

    text = ('# HELP queue_depth waiting jobs\n# TYPE queue_depth gauge\nqueue_depth{queue="a"} 3\n'
            'queue_depth{queue="b"} 4.5\nrequests_total 120 1700000000000\nbroken_metric NaN\ngarbage\n')
    assert parse_prometheus(text) == {"queue_depth": 7.5, "requests_total": 120.0}
    assert p90([0.01] * 9 + [1.0]) == 10.0 and p90([0.2]) == 200.0


def test_response_times_are_kept_for_a_window_per_path_and_for_all() -> None:
    from agent.app_metrics import WINDOW_SECONDS, AppMetrics

    clock = [0.0]

    def slow_get(target: object) -> tuple[int, str]:
        clock[0] += 0.05 if target.path == "/ready" else 0.2  # type: ignore[attr-defined]
        return 200, "queue_depth 2\n"

    app = AppMetrics(get=slow_get, clock=lambda: clock[0])
    notes = {"berth.io/response-time-path": "/slow", "berth.io/metrics-port": "9100"}
    app.pods([ready_pod("u1", annotations=notes)])
    app.round()
    shown = app.snapshot()["u1"]
    assert shown["responseTimes"]["/ready"] == {"p90Milliseconds": 50.0, "requests": 3}
    assert shown["responseTimes"]["/slow"] == {"p90Milliseconds": 200.0, "requests": 3}
    assert shown["responseTimes"][""] == {"p90Milliseconds": 200.0, "requests": 6}
    assert shown["custom"] == {"queue_depth": 2.0}
    clock[0] += WINDOW_SECONDS + 1
    assert "responseTimes" not in app.snapshot().get("u1", {})  # out of the window


def test_one_listing_serves_the_readers_that_can_use_it() -> None:
    from agent.engine import Listings

    clock, asked = [0.0], []

    def engine(argv: list[str]) -> str:
        asked.append(argv)
        return "[]"

    listings = Listings("podman", engine, clock=lambda: clock[0])
    listings.get(30.0)
    clock[0] += 10
    listings.get(15.0)  # ten seconds old: good enough for this reader
    assert len(asked) == 1
    listings.get(0.0)  # this one needs it fresh
    clock[0] += 16
    listings.get(15.0)
    assert len(asked) == 3


def test_an_autoscalers_path_is_timed_on_its_targets_pods() -> None:
    from agent.app_metrics import Measured, Target, measured, targets

    hpa = {"metadata": {"namespace": "default", "name": "slow"},
           "spec": {"metrics": [{"type": "ResponseTime", "responseTime": {"path": "/api", "target": {}}},
                                {"type": "Resource", "resource": {"name": "cpu"}}]},
           "status": {"selector": "app=slow,tier=web"}}
    unread = {**hpa, "status": {}}  # the controller has not said its target's pods yet
    assert measured([hpa, unread]) == [Measured("default", (("app", "slow"), ("tier", "web")), ("/api",))]
    pod = ready_pod("u1", containers=[{"name": "web", "ports": [{"containerPort": 8080}]}])
    pod["metadata"].update(namespace="default", labels={"app": "slow", "tier": "web", "extra": "x"})
    other = ready_pod("u2", containers=[{"name": "web", "ports": [{"containerPort": 8080}]}])
    other["metadata"].update(namespace="default", labels={"app": "slow"})  # not all of the selector
    assert targets([pod, other], measured([hpa])) == [Target("u1", "10.244.0.5", 8080, "/api", scrape=False)]
