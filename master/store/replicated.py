"""The Raft edge: the state machine replicated by PySyncObj, and the master's handle on it.

The replicated surface is one method, `StateMachine.apply(command)`. API threads
propose asynchronously and wait on a callback, so many requests in flight are
committed together in one append-entries round instead of one round each.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pysyncobj import FAIL_REASON, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.node import TCPNode

from berth.private_files import private_dir
from master.errors import ApiError
from master.observability import UNOBSERVED, MasterMetrics
from master.store.commands import Barrier, Command, Group, Obj
from master.store.encryption import Keyring, SealError, keeps_ciphertext, open_object, seal_command
from master.store.group_commit import GroupCommitter
from master.store.membership import judge
from master.store.prevote import PreVoteSyncObj
from master.store.state import ClusterState, Outcome, WatchEvent
from master.store.tickets import Tickets
from master.store.window import EventWindow

log = logging.getLogger(__name__)
_ELECTION_POLL = 0.05
_HAND_OVER_POLL = 0.01
# a settling barrier asks again this soon: the leader change that lost its write is often the one
# PySyncObj is still recording (its new leader not yet set when the lost write is answered)
_SETTLE_POLL = 0.005
# PySyncObj's journal and full dump, in the data dir (store/restore.py seeds a dump there)
JOURNAL_FILE = "raft.journal"
DUMP_FILE = "raft.dump"
T = TypeVar("T")

# Whether a failed write may still commit later matters to the client: say which.
_FAILURES = {
    FAIL_REASON.QUEUE_FULL: "the write queue is full; it was not applied",
    FAIL_REASON.MISSING_LEADER: "no leader is known (election, or no quorum); it was not applied",
    FAIL_REASON.DISCARDED: "a new leader discarded the write; it was not applied",
    FAIL_REASON.REQUEST_DENIED: "the write was denied; it was not applied",
    FAIL_REASON.NOT_LEADER: "the leader changed before confirming the write; its outcome is unknown",
    FAIL_REASON.LEADER_CHANGED: "the leader changed before confirming the write; its outcome is unknown",
    FAIL_REASON.UNKNOWN_OUTCOME: "the write's outcome is unknown",
}
_NOT_APPLIED = frozenset({FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
                          FAIL_REASON.REQUEST_DENIED})
# certainly not applied, and worth proposing again: no leader yet, or a new one that never had it
_PROPOSE_AGAIN = frozenset({FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED})
# Raft lost track of a forwarded proposal: its ticket settles it (tickets.py)
_LOST_TRACK = frozenset({FAIL_REASON.LEADER_CHANGED, FAIL_REASON.NOT_LEADER, FAIL_REASON.UNKNOWN_OUTCOME})


@dataclass(frozen=True)
class RaftTimings:
    """PySyncObj timings (see LAB-NOTES).

    `prompt_send`: a proposal wakes the Raft loop and goes out in append entries at once, and a
    commit's news goes to the followers as soon as the leader applies it (PySyncObj's
    `appendEntriesUseBatch=False`), so a write waits for the network, not for the next tick and
    append-entries period (23 ms p50 through a follower with them, 3.5 ms without: docs/benchmarks.md).
    Group commit (group_commit.py) still gathers concurrent writes into one entry, so under load the
    entries sent one by one stay few. False is PySyncObj's periodic batching, kept for comparison.
    """

    auto_tick_period: float = 0.005
    append_entries_period: float = 0.01
    raft_min_timeout: float = 0.4
    raft_max_timeout: float = 0.8
    leader_fallback_timeout: float = 1.2
    connection_timeout: float = 2.0
    connection_retry_time: float = 0.3
    log_compaction_min_entries: int = 20000
    log_compaction_min_time: float = 600.0
    prompt_send: bool = True

    def __post_init__(self) -> None:
        """PySyncObj asserts these when a master starts (an AssertionError, no name): said here, at
        the settings file's load, naming the setting."""
        for name in ("auto_tick_period", "append_entries_period", "raft_min_timeout", "raft_max_timeout",
                     "leader_fallback_timeout", "connection_timeout", "log_compaction_min_time"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"timings.{name}: must be a number of seconds above 0, not {value!r}")
        retry = self.connection_retry_time
        if isinstance(retry, bool) or not isinstance(retry, int | float) or retry < 0:
            raise ValueError("timings.connection_retry_time: must be a number of seconds, 0 or more")
        if not isinstance(self.log_compaction_min_entries, int) or self.log_compaction_min_entries < 2:
            raise ValueError("timings.log_compaction_min_entries: must be a whole number, 2 or more")
        for name, low, why in (
                ("raft_min_timeout", 3 * self.append_entries_period, "three append-entries periods"),
                ("raft_max_timeout", self.raft_min_timeout, "raft_min_timeout"),
                ("leader_fallback_timeout", self.append_entries_period, "append_entries_period")):
            if not getattr(self, name) > low:
                raise ValueError(f"timings.{name}: must be above {why} ({low:g} s)")
        if self.connection_timeout < self.raft_max_timeout:
            raise ValueError(f"timings.connection_timeout: must be at least raft_max_timeout "
                             f"({self.raft_max_timeout:g} s)")


def raft_conf(timings: RaftTimings, data_dir: str, password: str | None) -> SyncObjConf:
    """The SyncObjConf every master runs with (bench/store.py runs bare PySyncObj with it too)."""
    return SyncObjConf(
        password=password,
        autoTickPeriod=timings.auto_tick_period,
        appendEntriesPeriod=timings.append_entries_period,
        appendEntriesUseBatch=not timings.prompt_send,
        raftMinTimeout=timings.raft_min_timeout,
        raftMaxTimeout=timings.raft_max_timeout,
        leaderFallbackTimeout=timings.leader_fallback_timeout,
        connectionTimeout=timings.connection_timeout,
        connectionRetryTime=timings.connection_retry_time,
        logCompactionMinEntries=timings.log_compaction_min_entries,
        logCompactionMinTime=timings.log_compaction_min_time,
        journalFile=os.path.join(data_dir, JOURNAL_FILE),
        fullDumpFile=os.path.join(data_dir, DUMP_FILE),
        commandsWaitLeader=False,  # fail fast (503) rather than queue blind
        # Large batches: with the 64 KiB default the leader re-sends entries a follower
        # already holds (logged CRITICAL "truncating already-applied log entries").
        appendEntriesBatchSizeBytes=1 << 20,
        # `berth cluster add-master`/`remove-master`: changes are journaled entries, so a master
        # restarted with its original `peers` replays them (membership.py says which are safe)
        dynamicMembershipChange=True,
    )


_fork_hook_registered = False


def _lower_snapshot_priority() -> None:
    """PySyncObj forks to write snapshots; a busy child must not starve Raft's heartbeats."""
    global _fork_hook_registered
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=lambda: os.nice(19))
        _fork_hook_registered = True


class StateMachine(SyncObjConsumer):
    """What PySyncObj replicates and snapshots: only `state` is serialized."""

    def __init__(self, window_size: int, window_bytes: int = 256 << 20) -> None:
        # Attributes set before SyncObjConsumer.__init__ are left out of snapshots.
        self.tickets = Tickets()
        self.changed = threading.Condition(threading.RLock())
        self.window = EventWindow(window_size, max_bytes=window_bytes)
        self.listeners: list[Callable[[list[WatchEvent]], None]] = []
        self.loads = 0  # snapshots loaded: the state was replaced without events (api/rbac's cache)
        super().__init__()
        self.state = ClusterState()

    @replicated
    def apply(self, command: Command | Group) -> Outcome | list[Outcome]:
        commands = command.commands if isinstance(command, Group) else (command,)
        outcomes, events = [], []
        with self.changed:
            for one in commands:
                outcome, new_events = self.state.apply(one)
                outcomes.append(outcome)
                events.extend(new_events)
            if events:
                self.window.extend(events)
                self.changed.notify_all()
        if isinstance(command, Group) and command.ticket:
            self.tickets.applied(command.ticket, outcomes)
        if events:
            for listener in self.listeners:
                listener(events)
        return outcomes if isinstance(command, Group) else outcomes[0]

    def _deserialize(self, data: dict[str, Any]) -> None:
        with self.changed:
            super()._deserialize(data)
            self.window.reset(self.state.revision)
            self.loads += 1
            self.changed.notify_all()


def _answer(result: Outcome | None, error: int) -> Outcome | ApiError:
    """A proposal's outcome, or the error its client sees."""
    if error != FAIL_REASON.SUCCESS or result is None:
        message = _FAILURES.get(error, f"raft error {error}; its outcome is unknown")
        reason = "Unavailable" if error in _NOT_APPLIED else "OutcomeUnknown"
        return ApiError(503, reason, f"{message}; retry", None)
    return result if result.error is None else result.error


class Store:
    """A master's handle on the replicated store: propose writes, read, wait for events.

    Its edge seals Secrets (encryption.py): every command is sealed in `submit` and `dry_run`,
    before Raft or the state sees it. Outcomes and `get` answer values opened; `read`, `stored`
    and `events_after` answer objects as stored (sealed), and whoever shows them opens them
    (`opened`), so a value that does not open fails only the read that wanted it.
    """

    def __init__(
        self,
        self_address: str,
        peers: list[str],
        data_dir: str,
        password: str | None,
        timings: RaftTimings | None = None,
        window_size: int = 20000,
        write_timeout: float = 10.0,
        window_bytes: int = 256 << 20,
        keyring: Keyring | None = None,
        metrics: MasterMetrics | None = None,
    ) -> None:
        """`keyring`: the keys Secrets are sealed with (None: stored in clear); `metrics`: the master's,
        told each write's time from its proposal here to its apply here."""
        timings = timings or RaftTimings()
        self.keyring = keyring
        self.metrics = metrics or UNOBSERVED
        private_dir(data_dir)  # the journal and snapshots hold every secret
        self.machine = StateMachine(window_size, window_bytes)
        self.write_timeout = write_timeout
        self.self_address = self_address
        self.peers = list(peers)
        conf = raft_conf(timings, data_dir, password)
        self._membership_lock = threading.Lock()
        self._membership_pending = False
        _lower_snapshot_priority()
        self.raft = PreVoteSyncObj(self_address, self.peers, conf, consumers=[self.machine])
        self.committer = GroupCommitter(self._propose_entry, in_flight_timeout=write_timeout)

    # --- writes --------------------------------------------------------------------
    def propose(self, command: Command, timeout: float | None = None) -> Outcome:
        """Commit `command` through Raft; the outcome is this master's own apply of it.

        While no leader is known (an election), or a new leader never had it, the command was
        certainly not applied, so it is proposed again until the deadline; every other failure is
        the client's to see.
        """
        deadline = time.monotonic() + (timeout or self.write_timeout)
        while True:
            if self.leader() is None:
                result, error = None, FAIL_REASON.MISSING_LEADER  # nothing sent: certainly not applied
            else:
                result, error = self._propose_once(command, deadline)
            if error not in _PROPOSE_AGAIN or time.monotonic() + _ELECTION_POLL > deadline:
                break
            if error == FAIL_REASON.MISSING_LEADER:  # an election: wait for it; a discard had a leader
                time.sleep(_ELECTION_POLL)
        answer = _answer(result, error)
        if isinstance(answer, ApiError):
            raise answer
        return self._opened(answer)

    def propose_all(self, commands: list[Command], timeout: float | None = None) -> list[Outcome | ApiError]:
        """Commit independent commands together: submitted at once, so group commit carries them
        in a few Raft entries, and waited for once. Each command's outcome or its error, in order;
        none is retried (the caller's next round looks again)."""
        answers: list[Outcome | ApiError | None] = [None] * len(commands)
        done = threading.Condition()

        def on_result(index: int, result: Outcome | None, error: int) -> None:
            with done:
                answers[index] = _answer(result, error)
                done.notify_all()

        for index, command in enumerate(commands):
            self.submit(command, lambda result, error, index=index: on_result(index, result, error))
        with done:
            done.wait_for(lambda: all(a is not None for a in answers), timeout or self.write_timeout)
            final = list(answers)
        unconfirmed = ApiError(503, "OutcomeUnknown", "the write was not confirmed in time; its outcome "
                               "is unknown")
        return [unconfirmed if a is None else a if isinstance(a, ApiError) else self._opened(a)
                for a in final]

    def submit(self, command: Command, callback: Callable[[Outcome | None, int], None]) -> None:
        """Propose without waiting: `callback(outcome, fail_reason)` runs on PySyncObj's thread,
        its objects as stored. The one way into Raft: Secrets are sealed here."""
        proposed = time.monotonic()

        def applied(result: Outcome | None, error: int) -> None:
            if error == FAIL_REASON.SUCCESS:
                self.metrics.raft_applied(time.monotonic() - proposed)
            callback(result, error)

        self.committer.submit(self._sealed(command), applied)

    def _propose_entry(self, entry: Command | Group, callback: Callable[[Any, int], None]) -> None:
        """The committer's way into Raft: every entry goes as a ticketed Group, so that a proposal
        Raft loses track of (a forwarded one whose leader changed) is settled by its ticket instead
        of answered OutcomeUnknown."""
        tickets = self.machine.tickets
        ticket = tickets.issue()
        lone = not isinstance(entry, Group)
        group = Group(entry.commands, ticket) if isinstance(entry, Group) else Group((entry,), ticket)

        def answer(result: Any, error: int) -> None:
            callback(result[0] if lone and result is not None else result, error)

        def applied(result: Any, error: int) -> None:
            if error in _LOST_TRACK:
                threading.Thread(target=self._settle, args=(ticket, answer), name="settle-ticket",
                                 daemon=True).start()  # not on PySyncObj's thread: it waits for Raft
                return
            tickets.forget(ticket)
            answer(result, error)

        self.machine.apply(group, callback=applied)

    def _settle(self, ticket: int, answer: Callable[[Any, int], None]) -> None:
        """A lost proposal's fate, once a barrier proposed now is applied here (tickets.py)."""
        if not self._direct_barrier(time.monotonic() + self.write_timeout):
            self.machine.tickets.forget(ticket)
            answer(None, FAIL_REASON.UNKNOWN_OUTCOME)
            return
        applied, outcomes = self.machine.tickets.settle(ticket)
        if applied:
            log.info("a write whose leader changed was applied: answered as such")
            answer(outcomes, FAIL_REASON.SUCCESS)
        else:
            log.info("a write whose leader changed was not applied: proposed again")
            answer(None, FAIL_REASON.DISCARDED)

    def _direct_barrier(self, deadline: float) -> bool:
        """A barrier applied here, proposed straight to Raft and again until it is: not through the
        committer, whose slots the lost proposals being settled still hold."""
        while time.monotonic() < deadline:
            error = self._apply_waiting(Barrier(), deadline) if self.leader() is not None else \
                FAIL_REASON.MISSING_LEADER
            if error == FAIL_REASON.SUCCESS:
                return True
            if error not in _PROPOSE_AGAIN | _LOST_TRACK:
                return False
            time.sleep(_SETTLE_POLL)
        return False

    def _apply_waiting(self, entry: Command, deadline: float) -> int | None:
        """PySyncObj's fail reason for `entry`, None if it did not answer by `deadline`."""
        done = threading.Event()
        box: list[int | None] = [None]

        def on_result(_result: Any, error: int) -> None:
            box[0] = error
            done.set()

        self.machine.apply(entry, callback=on_result)
        done.wait(max(0.0, deadline - time.monotonic()))
        return box[0]

    def _sealed(self, command: Command) -> Command:
        """`command` with its Secrets sealed. An update first waits for a barrier: a value it does
        not change keeps the ciphertext of this master's copy, which must not lag behind the write
        the client made a moment ago through another master (one more Raft round, Secrets only)."""
        if self.keyring is not None and keeps_ciphertext(command):
            self.barrier()
        return seal_command(command, self.keyring, self.stored)

    def _propose_once(self, command: Command, deadline: float) -> tuple[Outcome, int]:
        done = threading.Event()
        box: list[Any] = [None, None]

        def on_result(result: Outcome | None, error: int) -> None:
            box[0], box[1] = result, error
            done.set()

        self.submit(command, on_result)
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise ApiError(503, "OutcomeUnknown", "the write was not confirmed in time; its outcome "
                           "is unknown")
        return box[0], box[1]

    def dry_run(self, command: Command) -> Outcome:
        """What `command` would do to this master's state, nothing kept: under the apply lock, so
        no committed entry sees it half-done. An error is raised as a real write's would be."""
        command = self._sealed(command)  # checked as it would be stored
        with self.machine.changed:
            outcome, _ = self.machine.state.apply(command, dry_run=True)
        if outcome.error is not None:
            raise outcome.error
        return self._opened(outcome)

    def _opened(self, outcome: Outcome) -> Outcome:
        """A write's answer with its Secrets' values opened. The write is done whatever happens
        here: a value that does not open (a key this master lacks) is answered null and logged,
        never an error after the fact (an admin must be able to delete such a Secret)."""
        if not any(obj.get("kind") == "Secret" for obj in outcome.objects):
            return outcome
        objects = []
        for obj in outcome.objects:
            try:
                objects.append(open_object(obj, self.keyring))
            except SealError as err:
                log.warning("answered without its values: %s", err.message)
                objects.append(open_object(obj, self.keyring, hide_unreadable=True))
        return Outcome(objects, outcome.actions, outcome.error)

    def opened(self, obj: Obj) -> Obj:
        """`obj` with its Secret values opened; SealError (a 500 naming the key id) if one does not."""
        return open_object(obj, self.keyring)

    def barrier(self) -> None:
        """Linearizable read point: after this, every write committed before the call is visible."""
        self.propose(Barrier())

    # --- reads ---------------------------------------------------------------------
    def read(self, reader: Callable[[ClusterState], T]) -> tuple[T, int]:
        """`reader(state)` and the revision it saw, under the apply lock: Raft's apply waits for it,
        so a reader only gets (`get`, `list`, `select`: the indexes narrow in time proportional
        to the answer) and filters, sorts or encodes after."""
        with self.machine.changed:
            return reader(self.machine.state), self.machine.state.revision

    def count(self, kind: str) -> int:
        """How many objects of `kind`, without the apply lock (a dict's length is read at once, and
        may be one apply old): for what only needs a size, on hot paths such as every heartbeat."""
        return self.machine.state.count(kind)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object as this master has it applied (None if there is none), a Secret's values
        opened (the runtime's env and volume files read them so); SealError if one does not open."""
        found = self.stored(kind, namespace, name)
        return None if found is None else open_object(found, self.keyring)

    def stored(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object as stored: a Secret's values sealed (for whoever needs no value)."""
        return self.read(lambda state: state.get(kind, namespace, name))[0]

    def events_after(self, revision: int, wait: float) -> list[WatchEvent]:
        """Events after `revision`, waiting up to `wait` seconds for the first; may raise WindowExpired."""
        with self.machine.changed:  # held from the wait to the read: no apply in between
            self.wait_past(revision, wait)
            return self.machine.window.since(revision)

    def latest(self) -> int:
        """The newest revision in the event window."""
        return self.machine.window.latest

    def wait_past(self, revision: int, wait: float, or_until: Callable[[], bool] = lambda: False) -> None:
        """Until an event past `revision` is applied or `or_until()` holds, at most `wait` seconds."""
        with self.machine.changed:
            window = self.machine.window
            self.machine.changed.wait_for(lambda: window.latest > revision or or_until(), timeout=wait)

    def nudge(self) -> None:
        """Wake the `wait_past` waiters to look at their `or_until` again."""
        with self.machine.changed:
            self.machine.changed.notify_all()

    def add_listener(self, listener: Callable[[list[WatchEvent]], None]) -> None:
        self.machine.listeners.append(listener)

    @property
    def snapshots_loaded(self) -> int:
        """How many times a snapshot replaced the state, which no listener hears of: whoever
        derives data from the state by its events must derive it again when this changes."""
        return self.machine.loads

    # --- cluster -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {**self.raft.getStatus(), "pre_vote_rounds": self.raft.pre_vote_rounds,
                "term_committed": self.raft.term_committed}

    def members(self) -> list[str]:
        """Every Raft member as this master knows them now (itself included): its `peers` setting,
        changed by the membership changes it has applied since."""
        for _ in range(3):  # PySyncObj's thread may change the set while it is copied
            try:
                return sorted({self.self_address, *(node.id for node in self.raft.otherNodes)})
            except RuntimeError:
                continue
        return sorted({self.self_address, *self.peers})

    def api_url(self, address: str) -> str | None:
        """The API URL a master added by `change_member` was given: it travels in the Raft entry that
        added it, so every master (and one restarted, replaying its journal) knows it."""
        for node in list(self.raft.otherNodes):
            if node.id == address:
                return getattr(node, "api_url", None)
        return None

    def leader_api(self, configured: Mapping[str, str]) -> tuple[str, str | None]:
        """The leader's Raft address ("" when none is known) and its API URL, None when unknown: from
        `configured` (the masters' `peer_apis` setting), else from the entry that added it (a master
        added since, `api_url`). The one way a follower finds where to pass a request on."""
        leader = self.leader() or ""
        return leader, configured.get(leader) or self.api_url(leader)

    def change_member(self, change: str, address: str, api_url: str | None = None) -> None:
        """On the leader: add or remove one Raft member, answered once the change is committed; an
        ApiError when it is refused (membership.judge) or fails. The leader itself is not removed:
        it hands leadership over (its answer is a 503 to retry, at the new leader)."""
        if not self.is_leader():
            raise ApiError(503, "Unavailable", "this master no longer leads; retry")
        self._admit_change(change, address)
        error = self._commit_change(change, address, api_url)
        if error == FAIL_REASON.REQUEST_DENIED:
            raise ApiError(409, "Conflict", "the leader refused the change: another one is not committed "
                           "yet, or the leader has not committed an entry of its term; retry", "address")
        if error != FAIL_REASON.SUCCESS:
            raise _answer(None, error)  # type: ignore[misc] - always an ApiError without a result

    def _admit_change(self, change: str, address: str) -> None:
        """The change judged against the members this leader reaches now; when allowed, marked as the
        one in progress, else an ApiError (a leader asked to remove itself hands leadership over)."""
        members = frozenset(self.members())
        reachable = frozenset({self.self_address,
                               *(m for m in members if self.raft.isNodeConnected(TCPNode(m)))})
        with self._membership_lock:
            verdict = judge(change, address, members, reachable, self.self_address, self._membership_pending)
            if verdict.allowed:
                self._membership_pending = True
        if verdict.status == 503 and address == self.self_address:
            self.raft.transferLeadership()
        if not verdict.allowed:
            raise ApiError(verdict.status, verdict.reason, verdict.message, "address")

    def _commit_change(self, change: str, address: str, api_url: str | None) -> int:
        """Proposes the admitted change; PySyncObj's fail reason once it answers, and the change no
        longer in progress. Not answered within `write_timeout`: a 503 OutcomeUnknown."""
        done = threading.Event()
        box: list[Any] = [None]

        def on_result(_result: Any, error: int) -> None:
            box[0] = error
            with self._membership_lock:
                self._membership_pending = False
            done.set()

        if change == "add":
            self.raft.addNodeToCluster(TCPNode(address, api_url=api_url), on_result)
        else:
            self.raft.removeNodeFromCluster(TCPNode(address), on_result)
        if not done.wait(self.write_timeout):
            with self._membership_lock:
                self._membership_pending = False  # PySyncObj still refuses a second change until this one is
            raise ApiError(503, "OutcomeUnknown", "the membership change was not confirmed in time; its "
                           "outcome is unknown: see `berth cluster`")
        return int(box[0])

    def hand_over(self, timeout: float) -> bool:
        """Before this master stops: if it leads, make a caught-up follower leader (Raft's TimeoutNow),
        holding this master's own proposals meanwhile, so the cluster keeps a leader throughout
        instead of finding the closed connections and electing one while writes wait. True once
        another leads (or this one did not); False if none took over within `timeout`, or none can."""
        if not self.is_leader():
            return True
        if len(self.members()) < 2:
            return False
        deadline = time.monotonic() + timeout
        self.committer.hold()
        self.raft.hand_over = True
        try:
            while self.is_leader() and time.monotonic() < deadline:
                time.sleep(_HAND_OVER_POLL)
        finally:
            self.raft.hand_over = False
            self.committer.release()
        if self.is_leader():
            log.warning("no follower took leadership within %.1f s: stopping as leader", timeout)
            return False
        log.info("leadership handed over to %s", self.leader())
        return True

    def is_leader(self) -> bool:
        return self.raft._isLeader()

    def leader(self) -> str | None:
        """The leader, if this master can reach it and a majority.

        PySyncObj keeps naming the last leader while cut off from everyone (it holds no
        election without a connection), so a name alone does not mean a working leader.
        """
        leader = self.raft._getLeader()
        if leader is None or not self.raft.hasQuorum:
            return None
        if leader != self.raft.selfNode and not self.raft.isNodeConnected(leader):
            return None
        return str(leader)

    def is_ready(self) -> bool:
        """A reachable leader, a quorum, an entry of the leader's term committed (before that, the
        commit index it announces may miss writes acknowledged under an earlier term), and
        everything the leader committed applied here."""
        status = self.status()
        return (
            self.leader() is not None
            and status["term_committed"]
            and status["leader_commit_idx"] is not None
            and status["last_applied"] >= status["leader_commit_idx"]
            and self.raft.isReady()
        )

    def close(self) -> None:
        self.committer.close()
        self.raft.destroy()
