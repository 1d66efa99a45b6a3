"""`berth wait` without a master: the rules of `--for`, of the object words and of a condition met
(berth/cli/waiting.py), and, against the stand-in master of test_cli_unit, that the command lists
once, follows the watch from that list's revision and says kubectl's words."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from berth.cli.main import main
from berth.cli.waiting import Targets, WaitFor, chosen, met, parse_for, parse_targets
from berth.errors import BerthError
from tests.harness import control_characters
from tests.test_cli_unit import FakeServer, _serve, pod_list, run

PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from _serve()


@pytest.mark.parametrize("word, wanted", [
    ("delete", WaitFor("delete")),
    ("create", WaitFor("create")),
    ("condition=Ready", WaitFor("condition", "Ready", "True")),
    ("condition=Ready=False", WaitFor("condition", "Ready", "False")),
    ("Condition=available", WaitFor("condition", "available", "True")),
    ("jsonpath={.status.phase}=Running", WaitFor("jsonpath", "{.status.phase}", "Running")),
    ("jsonpath={.status.podIP}", WaitFor("jsonpath", "{.status.podIP}", None)),
    ("jsonpath=.status.phase=Running", WaitFor("jsonpath", ".status.phase", "Running")),
])
def test_for_words(word: str, wanted: WaitFor) -> None:
    assert parse_for(word) == wanted


@pytest.mark.parametrize("word", ["ready", "", "condition", "condition=", "condition=Ready=", "delete=1",
                                  "jsonpath=", "jsonpath={.status.phase", "jsonpath={.status.phase}Running",
                                  "jsonpath={.status.phase}=", "jsonpath={.a b}", "jsonpath={}=x"])
def test_bad_for_words_say_what_is_allowed(word: str) -> None:
    with pytest.raises(ValueError):
        parse_for(word)


@pytest.mark.parametrize("words, selector, every, targets", [
    (["pod/a"], None, False, Targets(("pod",), ("a",))),
    (["pod/a", "deploy/b"], None, False, Targets(("pod", "deploy"), ("a", "b"))),
    (["pods", "a", "b"], None, False, Targets(("pods", "pods"), ("a", "b"))),
    (["pods"], "app=web", False, Targets(("pods",), (None,))),
    (["pods"], None, True, Targets(("pods",), (None,))),
])
def test_object_words(words: list[str], selector: str | None, every: bool, targets: Targets) -> None:
    assert parse_targets(words, selector, every) == targets


@pytest.mark.parametrize("words, selector, every, said", [
    ([], None, False, "give the objects"),
    (["pods"], None, False, "no name was specified"),
    (["pod/a"], "app=web", False, "name cannot be provided when -l"),
    (["pods", "a"], None, True, "name cannot be provided when --all"),
    (["pod/a", "b"], None, False, "use KIND/NAME"),
    (["pod/"], None, False, "use KIND/NAME"),
    (["pod/a/b"], None, False, "use KIND/NAME"),
    (["pods", "pod/a"], None, False, "no need to specify a resource type"),
])
def test_bad_object_words(words: list[str], selector: str | None, every: bool, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_targets(words, selector, every)


def ready_pod(name: str, ready: str | None = "True", phase: str = "Running", rv: int = 7,
              **condition: Any) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, **condition}]
    return {"apiVersion": "berth/v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "generation": 2},
            "status": {"phase": phase, "conditions": conditions, "podIP": ""}}


@pytest.mark.parametrize("obj, wanted, expected", [
    (ready_pod("a"), WaitFor("condition", "Ready", "True"), True),
    (ready_pod("a"), WaitFor("condition", "ready", "true"), True),  # kubectl's EqualFold
    (ready_pod("a", "False"), WaitFor("condition", "Ready", "True"), False),
    (ready_pod("a", "False"), WaitFor("condition", "Ready", "False"), True),
    (ready_pod("a", None), WaitFor("condition", "Ready", "False"), False),  # no condition is no False
    (ready_pod("a", observedGeneration=1), WaitFor("condition", "Ready", "True"), False),  # an old spec's
    (ready_pod("a", observedGeneration=2), WaitFor("condition", "Ready", "True"), True),
    (None, WaitFor("condition", "Ready", "True"), False),
    (None, WaitFor("delete"), True),
    (ready_pod("a"), WaitFor("delete"), False),
    (None, WaitFor("create"), False),
    (ready_pod("a"), WaitFor("create"), True),
    (ready_pod("a"), WaitFor("jsonpath", "{.status.phase}", "Running"), True),
    (ready_pod("a", phase="Pending"), WaitFor("jsonpath", "{.status.phase}", "Running"), False),
    (ready_pod("a"), WaitFor("jsonpath", "{.status.podIP}", None), False),  # empty is not there yet
    (ready_pod("a"), WaitFor("jsonpath", "{.status.phase}", None), True),
    (ready_pod("a"), WaitFor("jsonpath", "{.status.nope}", None), False),
])
def test_met(obj: dict[str, Any] | None, wanted: WaitFor, expected: bool) -> None:
    assert met(obj, wanted) is expected


@pytest.mark.parametrize(("names", "present", "wanted", "expected"), [
    ([None], ["b", "a"], WaitFor("create"), ["a", "b"]),
    ([None], [], WaitFor("delete"), "no matching resources found"),
    (["a", "b", "a"], ["a", "b"], WaitFor("condition", "Ready", "True"), ["a", "b"]),
    (["a", "c"], ["a"], WaitFor("condition", "Ready", "True"), 'pods "c" not found'),
    (["a", "c"], ["a"], WaitFor("jsonpath", "{.status.phase}"), 'pods "c" not found'),
    (["c"], [], WaitFor("create"), ["c"]),
    (["c"], [], WaitFor("delete"), ["c"]),
])
def test_chosen_names(names: list[str | None], present: list[str], wanted: WaitFor,
                      expected: list[str] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(BerthError, match=expected):
            chosen("pods", names, present, wanted)
    else:
        assert chosen("pods", names, present, wanted) == expected


def test_a_path_that_reaches_several_values_is_refused() -> None:
    two = ready_pod("a")
    two["status"]["conditions"].append({"type": "ContainersReady", "status": "True"})
    with pytest.raises(BerthError, match="more than one value"):
        met(two, WaitFor("jsonpath", "{.status.conditions[*].type}", "Ready"))


@pytest.mark.parametrize("args, said", [
    (["--for=ready", "pod/a"], "Invalid value for --for: 'ready': use delete, create"),
    (["--for=condition=Ready", "pods"], "no name was specified"),
    (["--for=condition=Ready", "pod/a", "--timeout", "soon"], "use a duration such as 30s"),
    (["--for=condition=Ready", "pod/a", "--timeout", "-1s"], "not negative"),
    (["pod/a"], "Missing option '--for'"),
])
def test_bad_arguments_are_usage_errors(args: list[str], said: str) -> None:
    result = CliRunner().invoke(main, ["--server", "https://127.0.0.1:9", "wait", *args])
    assert result.exit_code == 2 and said in result.output, result.output


def test_wait_follows_the_watch_from_the_list(fake: FakeServer) -> None:
    fake.json("GET", PODS, pod_list(ready_pod("a", "False", rv=5), ready_pod("b", rv=6), rv=9))
    fake.routes[("GET", "/api/v1/watch")] = lambda h, q, b: h.send_stream([
        {"type": "MODIFIED", "revision": 10, "object": ready_pod("other", "True", rv=10)},
        {"type": "MODIFIED", "revision": 11, "object": ready_pod("a", "False", rv=11)},
        {"type": "MODIFIED", "revision": 12, "object": ready_pod("a", "True", rv=12)},
    ])
    result = run(fake.url, "wait", "--for=condition=Ready", "pod/b", "pod/a", "--timeout", "20s")
    assert result.exit_code == 0, result.output
    assert result.stdout == "pod/b condition met\npod/a condition met\n"  # b at once, a when it came
    assert not control_characters(result.output)
    watched = [r["query"] for r in fake.requests if r["path"] == "/api/v1/watch"]
    assert len(watched) == 1 and watched[0]["since"] == ["9"] and watched[0]["kind"] == ["Pod"]


def test_wait_times_out_with_kubectls_words(fake: FakeServer) -> None:
    fake.json("GET", PODS, pod_list(ready_pod("a", "False"), ready_pod("b", "False"), rv=9))
    fake.routes[("GET", "/api/v1/watch")] = lambda h, q, b: h.send_stream([
        {"type": "BOOKMARK", "revision": 9}])
    result = run(fake.url, "wait", "--for=condition=Ready", "pods", "a", "b", "--timeout", "0s")
    assert result.exit_code == 1
    assert result.stderr == ("error: timed out waiting for the condition on pods/a\n"
                             "error: timed out waiting for the condition on pods/b\n")
    assert result.stdout == ""


def test_wait_for_delete_create_and_selectors(fake: FakeServer) -> None:
    fake.json("GET", PODS, pod_list(ready_pod("a"), rv=9))
    fake.routes[("GET", "/api/v1/watch")] = lambda h, q, b: h.send_stream([
        {"type": "ADDED", "revision": 10, "object": ready_pod("new", rv=10)},
        {"type": "DELETED", "revision": 11, "object": ready_pod("a", rv=11)},
    ])
    gone = run(fake.url, "wait", "--for=delete", "pod/a", "pod/never", "--timeout", "20s")
    assert (gone.exit_code, gone.stdout) == (0, "pod/never deleted\npod/a deleted\n"), gone.output
    made = run(fake.url, "wait", "--for=create", "pod/new", "--timeout", "20s")
    assert (made.exit_code, made.stdout) == (0, "pod/new condition met\n"), made.output
    every = run(fake.url, "wait", "--for=jsonpath={.status.phase}=Running", "pods", "--all")
    assert (every.exit_code, every.stdout) == (0, "pod/a condition met\n"), every.output
    missing = run(fake.url, "wait", "--for=condition=Ready", "pod/nope", "--timeout", "20s")
    assert missing.exit_code == 1 and 'pods "nope" not found' in missing.stderr
    fake.json("GET", PODS, pod_list(rv=9))
    none = run(fake.url, "wait", "--for=condition=Ready", "pods", "-l", "app=web")
    assert none.exit_code == 1 and "no matching resources found" in none.stderr
    listed = [r["query"] for r in fake.requests if r["path"] == PODS]
    assert listed[-1]["labelSelector"] == ["app=web"]
