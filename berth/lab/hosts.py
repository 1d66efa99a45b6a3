"""Lab hosts on one machine: each a set of namespaces with its own address, sshd and podman.

A host is a network namespace (a veth into the lab's bridge), plus UTS, IPC, PID
and mount namespaces with catatonit as PID 1, private tmpfs on /run and /dev/shm,
its own sshd (pinned host key, key-only root login) and its own podman storage
and containers.conf. Killing the PID-namespace init takes every process of the
host with it, which is what a crash is. See ../shared/LAB-NOTES.md.

Every command is an argument list; nothing here goes through a shell except the
few fixed mount steps inside a new host, whose arguments are quoted with shlex.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from berth.containers import DOCKER_SANDBOX_IMAGE
from berth.quantity import cpu_millis, memory_bytes

STATE_ROOT = Path(os.environ.get("BERTH_LAB_ROOT", "/var/lib/berth-lab"))
IMAGE = "localhost/busybox:lab"
PAUSE_IMAGE = DOCKER_SANDBOX_IMAGE  # docker hosts' pod sandbox
RUNTIMES = ("podman", "docker")
CATATONIT = "/usr/bin/catatonit"
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "/run/libpod"
"""


class LabError(RuntimeError):
    pass


def run(args: list[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise LabError(f"{shlex.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class HostSize:
    """Made-up capacity that psutil inside the host reports."""

    cpus: int
    memory_mib: int

    @classmethod
    def parse(cls, text: str) -> HostSize:
        """`2cpu:4Gi` -> 2 CPUs, 4096 MiB."""
        cpu_part, _, memory_part = text.partition(":")
        cpus = cpu_millis(cpu_part.removesuffix("cpu").removesuffix("cpus")) // 1000
        if cpus < 1 or not memory_part:
            raise ValueError(f"size {text!r}: use CPUS:MEMORY, e.g. 2cpu:4Gi")
        return cls(cpus, memory_bytes(memory_part) // (1 << 20))


def _subnets_in_use() -> set[str]:
    """Subnets of the machine's interfaces and of every saved lab."""
    used = set()
    addresses = run(["ip", "-o", "-4", "addr", "show"], check=False).stdout.split()
    for word in addresses:
        if "/" in word and word[0].isdigit():
            with contextlib.suppress(ValueError):
                used.add(str(ipaddress.ip_interface(word).network))
    for saved in STATE_ROOT.glob("*/lab.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            used.add(json.loads(saved.read_text())["subnet"])
    return used


def choose_subnet(name: str) -> str:
    """A /24 in 10.250.0.0/16 picked by the name's hash, skipping any already in use."""
    used = _subnets_in_use()
    start = zlib.crc32(name.encode()) % 200
    for step in range(200):
        subnet = f"10.250.{10 + (start + step) % 200}.0/24"
        if subnet not in used:
            return subnet
    raise LabError("no free 10.250.x.0/24 subnet for another lab")


def lab_name(name: str) -> str:
    """`name` if it can name a lab (its bridge, namespaces and files carry it), else ValueError."""
    if not name.isalnum() or not name.islower() or len(name) > 8:
        raise ValueError("a lab name is 1-8 lowercase letters or digits")
    return name


@dataclass
class Lab:
    """Names and addresses of one lab; several labs live side by side by name."""

    name: str = "berth"
    hosts: int = 3
    subnet: str = ""
    sizes: dict[str, HostSize] = field(default_factory=dict)
    ansible_vars: dict[str, Any] = field(default_factory=dict)  # `lab up --var`: beat group_vars
    runtimes: dict[str, str] = field(default_factory=dict)  # host -> "docker" (podman otherwise)

    def __post_init__(self) -> None:
        lab_name(self.name)
        if not self.subnet:
            self.subnet = choose_subnet(self.name)

    # --- names ------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def bridge(self) -> str:
        return f"bb-{self.name}"

    @property
    def nft_table(self) -> str:
        return f"berth_{self.name}_part"

    def host_names(self) -> list[str]:
        return [f"h{i}" for i in range(1, self.hosts + 1)]

    def netns(self, host: str) -> str:
        return f"berth-{self.name}-{host}"

    def veth(self, host: str) -> str:
        return f"bv{self.name}{host}"[:15]

    def address(self, host: str) -> str:
        network = ipaddress.ip_network(self.subnet)
        return str(network.network_address + 10 + int(host.removeprefix("h")))

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 1)

    def host_dir(self, host: str) -> Path:
        return self.root / "hosts" / host

    def runtime(self, host: str) -> str:
        return self.runtimes.get(host, "podman")

    def docker_cgroup_parent(self, host: str) -> str:
        return f"berth-lab-{self.name}-{host}-docker"

    @property
    def ssh_key(self) -> Path:
        return self.root / "id_lab"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    # --- saved description --------------------------------------------------------------
    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        (self.root / "lab.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, name: str) -> Lab:
        path = STATE_ROOT / name / "lab.json"
        if not path.exists():
            return cls(name=name)
        data = json.loads(path.read_text())
        data["sizes"] = {h: HostSize(**s) for h, s in data.get("sizes", {}).items()}
        return cls(**data)


# --- one host ------------------------------------------------------------------------------

def _write_host_files(lab: Lab, host: str) -> None:
    d = lab.host_dir(host)
    (d / "storage").mkdir(parents=True, exist_ok=True)
    key = d / "ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key), "-C", lab.netns(host)])
    shutil.copy(lab.ssh_key.with_suffix(".pub"), d / "authorized_keys")
    (d / "authorized_keys").chmod(0o600)
    (d / "sshd_config").write_text(f"""Port 22
ListenAddress {lab.address(host)}
HostKey {key}
PidFile {d}/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {d}/authorized_keys {d}/authorized_keys.%u
StrictModes no
UsePAM no
UseDNS no
MaxStartups 200:30:400
MaxSessions 200
SetEnv CONTAINERS_CONF={d}/containers.conf CONTAINERS_STORAGE_CONF={d}/storage.conf BERTH_HOST={host}
Subsystem sftp internal-sftp
""")
    # the engine's networks (the agent's pod network among them) are each host's own
    (d / "containers.conf").write_text(f'{CONTAINERS_CONF}[network]\nnetwork_config_dir = "{d}/networks"\n')
    (d / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{d}/storage"\nrunroot = "/run/containers/storage"\n'
    )
    (d / "bashrc").write_text("\n")  # hides root's ~/.bashrc: pyenv init costs ~95 ms per SSH command


def host_init_pid(lab: Lab, host: str) -> int | None:
    """The host's PID-1 catatonit, only if it really is ours (never signal a reused pid)."""
    try:
        pid = int((lab.host_dir(host) / "init.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        netns = os.readlink(f"/proc/{pid}/ns/net")
        expected = f"net:[{os.stat(f'/run/netns/{lab.netns(host)}').st_ino}]"
    except (OSError, ValueError):
        return None
    return pid if cmdline[0] == CATATONIT.encode() and netns == expected else None


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def in_host(lab: Lab, host: str, args: list[str], check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command inside the host's namespaces (not `ip netns exec`: it hides cgroups)."""
    pid = host_init_pid(lab, host)
    if pid is None:
        raise LabError(f"host {host} of lab {lab.name} is not running")
    d = lab.host_dir(host)
    env = ["env", f"CONTAINERS_CONF={d}/containers.conf", f"CONTAINERS_STORAGE_CONF={d}/storage.conf"]
    return run(["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", *env, *args],
               check=check, timeout=timeout)


HOST_STATE_DIR = "/var/lib/berth"


def start_host(lab: Lab, host: str) -> int:
    """Boot the host's namespaces, mounts and sshd; returns its init pid."""
    if (pid := host_init_pid(lab, host)) is not None:
        return pid
    d = lab.host_dir(host)
    run(["ip", "link", "set", lab.veth(host), "up"])
    launcher = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{lab.netns(host)}", "unshare", "--uts", "--ipc",
         "--pid", "--mount", "--fork", "--mount-proc", "--propagation", "private", CATATONIT, "-P"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    init = None
    for _ in range(100):  # the unshare'd child appears within a few ms; bounded at 5 s
        started = children(launcher.pid)
        if started:
            init = started[0]
            break
        time.sleep(0.05)
    if init is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)  # its own session: nothing else is in it
        raise LabError(f"host {host}: its init did not start")
    (d / "init.pid").write_text(str(init))
    steps = [
        ["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"],
        ["mkdir", "-p", "/run/sshd"],
        ["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm"],
        ["mount", "--bind", str(d / "bashrc"), "/root/.bashrc"],
        # each host's own /var/lib/berth (its pods' volumes, master/runtime/volumes.py), at the path a
        # real host has: the lab's hosts share the machine's files otherwise
        ["mkdir", "-p", HOST_STATE_DIR, str(d / "var-lib-berth")],
        ["mount", "--bind", str(d / "var-lib-berth"), HOST_STATE_DIR],
        ["hostname", host],
    ]
    size = lab.sizes.get(host)
    if size is not None:
        _write_fake_size(d, size)
        steps += [["mount", "--bind", str(d / "meminfo"), "/proc/meminfo"],
                  ["mount", "--bind", str(d / "cpu_online"), "/sys/devices/system/cpu/online"]]
    steps.append(["/usr/sbin/sshd", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")])
    script = " && ".join(shlex.join(step) for step in steps)
    if lab.runtime(host) == "docker":
        script += " && " + _dockerd_script(lab, host)
    run(["nsenter", "-t", str(init), "-m", "-u", "-i", "-n", "-p", "sh", "-c", script])
    if lab.runtime(host) == "docker":
        _wait_for_dockerd(lab, host)
    return init


def _dockerd_script(lab: Lab, host: str) -> str:
    """The host's own dockerd, in its namespaces: its own data root, and /run and /etc/docker
    private to the host (its socket, containerd and key). It leaves the machine's iptables
    alone; published ports go through docker-proxy."""
    d = lab.host_dir(host)
    (d / "etc-docker").mkdir(exist_ok=True)
    dockerd = ["/usr/sbin/dockerd", "--data-root", str(d / "docker"), "--iptables=false", "--ip6tables=false",
               "--storage-driver", "overlay2", "--exec-opt", "native.cgroupdriver=cgroupfs",
               "--cgroup-parent", f"/{lab.docker_cgroup_parent(host)}",
               "--default-ulimit", "nofile=1024:1024", "--default-ulimit", "nproc=1024:1024"]
    return " && ".join([shlex.join(["mount", "--bind", str(d / "etc-docker"), "/etc/docker"]),
                        f"(setsid {shlex.join(dockerd)} >{shlex.quote(str(d / 'dockerd.log'))} 2>&1 "
                        "</dev/null &)"])


def _wait_for_dockerd(lab: Lab, host: str) -> None:
    for _ in range(120):  # bounded: 60 s (it answers within a second here)
        if in_host(lab, host, ["docker", "version", "--format", "{{.Server.Version}}"], check=False,
                   timeout=10).returncode == 0:
            return
        time.sleep(0.5)
    raise LabError(f"host {host}: dockerd did not answer; see {lab.host_dir(host) / 'dockerd.log'}")


def _write_fake_size(d: Path, size: HostSize) -> None:
    kib = size.memory_mib * 1024
    lines = []
    for line in Path("/proc/meminfo").read_text().splitlines():
        key = line.split(":", 1)[0]
        value = {"MemTotal": kib, "MemFree": kib * 3 // 4, "MemAvailable": kib * 7 // 8}.get(key)
        lines.append(f"{key + ':':<16}{value:>8} kB" if value is not None else line)
    (d / "meminfo").write_text("\n".join(lines) + "\n")
    (d / "cpu_online").write_text(f"0-{size.cpus - 1}\n" if size.cpus > 1 else "0\n")


def crash_host(lab: Lab, host: str) -> None:
    """Every process of the host dies at once, and its cable is pulled."""
    pid = host_init_pid(lab, host)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone([pid])
    run(["ip", "link", "set", lab.veth(host), "down"], check=False)


def _exited(pid: int) -> bool:
    """Gone, or a zombie: an exited process has let go of its namespaces, mounts and memory, and only
    its parent's wait removes it (reaped here when that parent is this process: the host's launcher)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"  # the name, in parentheses, may hold spaces


def _wait_gone(pids: list[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [pid for pid in left if not _exited(pid)]
        if left:
            time.sleep(0.02)


# --- the whole lab --------------------------------------------------------------------------

def _busybox_rootfs(lab: Lab) -> Path:
    """A tar of a static busybox rootfs: no registry is reachable, images are made here."""
    tar = lab.root / "busybox-rootfs.tar"
    if tar.exists():
        return tar
    rootfs = lab.root / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    for sub in ("usr/bin", "bin", "etc", "tmp", "proc", "sys", "dev", "root", "var/www"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy("/usr/bin/busybox", rootfs / "usr/bin/busybox")
    applets = run([str(rootfs / "usr/bin/busybox"), "--list"]).stdout.split()
    for applet in applets:
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("/usr/bin/busybox")
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc/group").write_text("root:x:0:\n")
    (rootfs / "var/www/index.html").write_text("hello-from-lab\n")
    run(["tar", "-C", str(rootfs), "-cf", str(tar), "."])
    shutil.rmtree(rootfs)
    return tar


def _images(lab: Lab, host: str) -> list[tuple[str, str]]:
    """(name, CMD) of the images a host gets from the busybox tar; docker hosts also a pod sandbox."""
    images = [(IMAGE, '["/bin/sh"]')]
    if lab.runtime(host) == "docker":
        images.append((PAUSE_IMAGE, '["sleep", "2147483647"]'))
    return images


def up(lab: Lab, on_host: Callable[[int], None] | None = None) -> None:
    """Make (or remake) every host: idempotent, and clears what a crashed run left. `on_host` hears
    how many hosts are made, after each (`berth lab up`'s progress)."""
    if all(host_init_pid(lab, h) is not None for h in lab.host_names()) and (lab.root / "lab.json").exists():
        return
    down(lab)
    lab.save()
    if not lab.ssh_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(lab.ssh_key), "-C", f"lab-{lab.name}"])
    tar = _busybox_rootfs(lab)
    prefix = ipaddress.ip_network(lab.subnet).prefixlen
    run(["ip", "link", "add", lab.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{lab.gateway}/{prefix}", "dev", lab.bridge])
    run(["ip", "link", "set", lab.bridge, "up"])
    known = []
    for host in lab.host_names():
        ns, veth = lab.netns(host), lab.veth(host)
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", lab.bridge, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{lab.address(host)}/{prefix}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _write_host_files(lab, host)
        start_host(lab, host)
        public = (lab.host_dir(host) / "ssh_host_ed25519_key.pub").read_text().split()
        known.append(f"{host},{lab.address(host)} {public[0]} {public[1]}")  # pinned to name and address
        for image, command in _images(lab, host):
            in_host(lab, host, [lab.runtime(host), "import", "--change", f"CMD {command}", str(tar), image],
                    timeout=300)
        if on_host is not None:
            on_host(len(known))
    lab.known_hosts.write_text("\n".join(known) + "\n")


def host_status(lab: Lab) -> dict[str, dict[str, object]]:
    return {host: {"address": lab.address(host), "running": host_init_pid(lab, host) is not None,
                   "netns": lab.netns(host)} for host in lab.host_names()}


def partition(lab: Lab, a: str, b: str) -> None:
    """Drop bridge traffic between two hosts, both ways (an nftables bridge table)."""
    table = lab.nft_table
    run(["nft", "add", "table", "bridge", table])
    run(["nft", "add", "chain", "bridge", table, "forward",
         "{ type filter hook forward priority 0; policy accept; }"])
    for src, dst in ((a, b), (b, a)):
        run(["nft", "add", "rule", "bridge", table, "forward", "iifname", lab.veth(src),
             "oifname", lab.veth(dst), "drop"])


def heal(lab: Lab) -> None:
    run(["nft", "delete", "table", "bridge", lab.nft_table], check=False)


def _processes_in_netns(netns: str) -> list[int]:
    try:
        inode = os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return []
    wanted, found = f"net:[{inode}]", []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "net") == wanted:
                    found.append(int(entry.name))
    return found


def _cgroups_under(parent: str) -> list[Path]:
    """A docker host's cgroup parent in every hierarchy, and all below it (deepest removed first)."""
    found: list[Path] = []
    for top in Path("/sys/fs/cgroup").glob(f"*/{parent}"):
        for directory, _subdirs, _files in os.walk(top):  # os.walk skips what vanishes meanwhile
            found.append(Path(directory))
    return found


def _libpod_cgroups(container_ids: list[str]) -> list[Path]:
    """The cgroups the lab's containers left; podman may be removing some of them meanwhile."""
    wanted = tuple(f"libpod-{cid}" for cid in container_ids)
    found = []
    for base in Path("/sys/fs/cgroup").glob("*"):
        for parent, dirs, _files in os.walk(base, onerror=lambda _err: None):  # a cgroup gone: skip
            found.extend(Path(parent, d) for d in dirs if d.startswith(wanted))
    return found


def down(lab: Lab) -> None:
    """Remove everything the lab made: processes, cgroups, storage, namespaces, links, files."""
    heal(lab)
    hosts_dir = lab.root / "hosts"
    hosts = sorted(p.name for p in hosts_dir.iterdir()) if hosts_dir.exists() else []
    every_host = sorted(set(hosts) | set(lab.host_names()))
    killed = [pid for host in every_host for pid in _processes_in_netns(lab.netns(host))]  # the inits,
    for pid in killed:  # and strays of a failed start: all killed, then all waited for
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(killed)
    for host in every_host:
        storage = lab.host_dir(host) / "storage" / "overlay-containers"
        ids = [p.name for p in storage.iterdir()] if storage.exists() else []
        cgroups = _libpod_cgroups(ids) + _cgroups_under(lab.docker_cgroup_parent(host))
        for cgroup in sorted(cgroups, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                cgroup.rmdir()
        run(["ip", "netns", "del", lab.netns(host)], check=False)
        run(["ip", "link", "del", lab.veth(host)], check=False)
    run(["ip", "link", "del", lab.bridge], check=False)
    if lab.root.exists():
        _unmount_under(lab.root)
        shutil.rmtree(lab.root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """Overlay mounts of a killed host's containers can outlive it; release them first."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    targets = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root))]
    for target in sorted(targets, key=len, reverse=True):
        run(["umount", "-l", target], check=False)
