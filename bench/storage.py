"""Volumes in the lab: sequential MB/s into a shared (sshfs) volume beside a local one, and the
seconds a pod's volumes add to its start.

    python -m bench.storage                 # 256 MiB, 3 runs of each
    python -m bench.storage --mib 512 --runs 5

A two-host lab deployed with Ansible as `lab/up.sh` does. h1 is the storage host (the `shared`
class's server) and is cordoned, so every pod runs on h2: a `local` claim's directory is on h2's
disk, a `shared` claim's on h1's, reached from h2 with sshfs over the lab's network. Each run, for
each class: one pod writes the file (`dd ... conv=fsync`: the time includes getting it to the
server's disk), the machine's page cache is dropped, and a second pod (a fresh mount: no FUSE
cache) reads it back; dd's own figure is taken. The local volume is the reference: the same pods,
the same host, the same run.

ConfigMap update: seconds from a PATCH of a ConfigMap to its new value in a running pod's file.

Pod start: seconds from create to Running, alternating a pod with no volume and one with an
emptyDir, a ConfigMap, a Secret and a bound local claim, so the difference is what the volumes'
set-up (one command for the directories and mounts, one SFTP session for the files) costs.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from typing import Any

from bench._common import add_lab_option, interrupt_on_sigterm, machine_header
from bench.host_failure import Cluster, deployed, wait
from berth.containers import container_name
from berth.lab.hosts import IMAGE, Lab, in_host

TIMED = re.compile(r"timed ([0-9.]+) ([0-9.]+) bytes ([0-9]+)")  # what `timed()` prints
CLAIMS = """apiVersion: berth/v1
kind: PersistentVolumeClaim
metadata: {name: bench-local}
spec: {storageClassName: local, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: berth/v1
kind: PersistentVolumeClaim
metadata: {name: bench-shared}
spec: {storageClassName: shared, accessModes: [ReadWriteMany], resources: {requests: {storage: 1Gi}}}
---
apiVersion: berth/v1
kind: ConfigMap
metadata: {name: bench-config}
data: {a: "1", b: "2"}
---
apiVersion: berth/v1
kind: Secret
metadata: {name: bench-secret}
stringData: {token: not-much-of-a-secret}
"""


def dd_pod(name: str, claim: str, script: str) -> dict[str, Any]:
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never",
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
                     "containers": [{"name": "dd", "image": IMAGE, "command": ["sh", "-c", script],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}


def start_pod(name: str, with_volumes: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": IMAGE, "command": ["sleep", "3600"]}
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 0, "containers": [container]}
    if with_volumes:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}},
                           {"name": "config", "configMap": {"name": "bench-config"}},
                           {"name": "secret", "secret": {"secretName": "bench-secret"}},
                           {"name": "data", "persistentVolumeClaim": {"claimName": "bench-local"}}]
        container["volumeMounts"] = [{"name": v["name"], "mountPath": f"/{v['name']}"}
                                     for v in spec["volumes"]]
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def pod(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        return cluster.get(f"/api/v1/namespaces/default/pods/{name}")
    except RuntimeError:
        return None


def phase(cluster: Cluster, name: str) -> str | None:
    return ((pod(cluster, name) or {}).get("status") or {}).get("phase")


def apply(cluster: Cluster, manifest: dict[str, Any] | str) -> None:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    done = cluster.cli("apply", "-f", "-", stdin=text)
    assert done.returncode == 0, done.stderr


def remove(cluster: Cluster, name: str) -> None:
    cluster.cli("delete", "pod", name, "--now")
    wait(lambda: pod(cluster, name) is None, 120, f"{name} deleted")


def finished(cluster: Cluster, name: str) -> str:
    """The pod's log once it succeeded (raises if it failed)."""
    wait(lambda: phase(cluster, name) in ("Succeeded", "Failed"), 300, f"{name} finished")
    shown = cluster.cli("logs", name)
    logs = shown.stdout + shown.stderr
    if phase(cluster, name) != "Succeeded":
        raise RuntimeError(f"{name} failed: {logs[-500:]}")
    return logs


def timed(command: str, size: int) -> str:
    """A shell line that runs `command` between two readings of /proc/uptime (busybox's dd prints no
    rate and its date no nanoseconds; the uptime's hundredths are a few per cent of a local
    transfer of 256 MiB)."""
    return (f"a=$(cut -d' ' -f1 /proc/uptime); {command} || exit 1; b=$(cut -d' ' -f1 /proc/uptime); "
            f"echo timed $a $b bytes {size}")


def mb_per_s(logs: str) -> float:
    found = TIMED.findall(logs)
    if not found:
        raise RuntimeError(f"no timing in: {logs[-300:]}")
    began, ended, size = found[-1]
    return int(size) / max(float(ended) - float(began), 0.01) / 1e6


def drop_caches() -> None:
    """The machine's page cache (the lab's hosts share its kernel): reads come from the disk."""
    with open("/proc/sys/vm/drop_caches", "w") as caches:
        caches.write("3\n")


def throughput(cluster: Cluster, claim: str, mib: int, run: int) -> tuple[float, float]:
    writer, reader = f"w-{claim}-{run}", f"r-{claim}-{run}"
    size = mib << 20
    write = f"dd if=/dev/zero of=/data/f bs=1M count={mib} conv=fsync"
    apply(cluster, dd_pod(writer, claim, timed(write, size)))
    wrote = mb_per_s(finished(cluster, writer))
    remove(cluster, writer)
    drop_caches()
    apply(cluster, dd_pod(reader, claim, timed("dd if=/data/f of=/dev/null bs=1M", size) + "; rm -f /data/f"))
    read = mb_per_s(finished(cluster, reader))
    remove(cluster, reader)
    return wrote, read


def start_seconds(cluster: Cluster, name: str, with_volumes: bool) -> float:
    began = time.monotonic()
    apply(cluster, start_pod(name, with_volumes))
    wait(lambda: phase(cluster, name) == "Running", 120, f"{name} Running")
    took = time.monotonic() - began
    remove(cluster, name)
    return took


def update_seconds(cluster: Cluster, runs: int) -> list[float]:
    """From a ConfigMap's PATCH to its new value read in a running pod's file (read on the host with
    `podman exec`, every 0.1 s): Kubernetes takes up to its kubelet's sync period plus its cache's
    TTL (about a minute); the issue asks for within a minute."""
    reader = start_pod("config-reader", with_volumes=True)
    apply(cluster, reader)
    wait(lambda: phase(cluster, "config-reader") == "Running", 120, "config-reader Running")
    name = container_name(pod(cluster, "config-reader") or {}, "main")
    took = []
    for run in range(runs):
        value = f"value-{run}-{time.time():.0f}"
        began = time.monotonic()
        done = cluster.cli("patch", "configmap", "bench-config", "-p", json.dumps({"data": {"a": value}}))
        assert done.returncode == 0, done.stderr
        wait(lambda v=value: in_host(cluster.lab, "h2", ["podman", "exec", name, "cat", "/config/a"],
                                     check=False).stdout == v, 120, "the new value in the file")
        took.append(time.monotonic() - began)
    remove(cluster, "config-reader")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    add_lab_option(parser, "sg")
    args = parser.parse_args()
    interrupt_on_sigterm()
    print(f"berth bench/storage.py: {args.mib} MiB sequential, shared (sshfs) beside local; pod start "
          f"with and without volumes; {args.runs} runs")
    print(f"  {machine_header()}")
    figures: dict[str, list[tuple[float, float]]] = {"bench-local": [], "bench-shared": []}
    starts: dict[bool, list[float]] = {False: [], True: []}
    with deployed(Lab(name=args.lab, hosts=2)) as cluster:
        assert cluster.cli("cordon", "h1").returncode == 0  # h1 holds the shared volumes; pods run on h2
        apply(cluster, CLAIMS)
        for run in range(args.runs):
            for claim in figures:
                figures[claim].append(throughput(cluster, claim, args.mib, run))
                print(f"  run {run + 1} {claim}: write {figures[claim][-1][0]:.1f} MB/s, "
                      f"read {figures[claim][-1][1]:.1f} MB/s")
        for run in range(args.runs):
            for with_volumes in (False, True):
                starts[with_volumes].append(start_seconds(cluster, f"start-{int(with_volumes)}-{run}",
                                                          with_volumes))
            print(f"  run {run + 1} start: {starts[False][-1]:.2f} s bare, "
                  f"{starts[True][-1]:.2f} s with volumes")
        updates = update_seconds(cluster, args.runs)
        print(f"  ConfigMap update to file: {', '.join(f'{u:.2f}' for u in updates)} s")
    local = [statistics.median(f[i] for f in figures["bench-local"]) for i in (0, 1)]
    shared = [statistics.median(f[i] for f in figures["bench-shared"]) for i in (0, 1)]
    print("\n| sequential, median | local (h2's disk) MB/s | shared (sshfs to h1) MB/s | shared / local |")
    print("|---|---|---|---|")
    for index, what in enumerate(("write, conv=fsync", "read, cold cache")):
        print(f"| {what} | {local[index]:.1f} | {shared[index]:.1f} | {shared[index] / local[index]:.2f} |")
    bare, volumed = statistics.median(starts[False]), statistics.median(starts[True])
    print("\n| pod start, create -> Running, median | seconds |\n|---|---|")
    print(f"| no volume | {bare:.2f} |\n| emptyDir, ConfigMap, Secret, local claim | {volumed:.2f} |")
    print(f"| what the volumes add | {volumed - bare:+.2f} |")
    print(f"\n| a ConfigMap's PATCH to the new value in a running pod's file, median | "
          f"{statistics.median(updates):.2f} s | target: within 60 s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
