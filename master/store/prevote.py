"""Raft's PreVote (Ongaro's thesis, 9.6; etcd's `PreVote`), added to PySyncObj.

Without it, a master cut off from the leader (but not from the others) times out, raises
its term and asks for votes, again and again; its requests, and its higher term once it
is heard again, depose a healthy leader (issue 11: the term went from 3 to 12 in seconds
when two masters lost sight of each other). With it, a master whose election timer runs
out first asks the others whether they would vote for it at the next term, without
raising its own. A master that leads, or has heard from a leader within the minimum
election timeout, says no, as does one whose log is more up to date. Only with a majority of yeses
does the real election (PySyncObj's own) start. A cut-off master's term therefore stays
put, and it rejoins as a follower.

The subclass also keeps `term_committed`: whether the commit index this master follows
points at an entry of the current term. A leader learns what is committed only once an
entry of its own term is (Raft, section 8: its no-op); until then the index it announces
can stop short of writes an earlier leader acknowledged, as after a restart of every master,
and a master that called itself ready there served a list without them.

A follower whose connection to the leader closes (the leader's process died: its kernel closed
the sockets) does not wait out its election timeout: its timer is brought forward to a short
wait, staggered by address (LOST_LEADER_FIRST, LOST_LEADER_STAGGER) so that two survivors never
ask at once and split their votes. It still asks first, and a member that can reach the leader
and heard it lately still says no, so a connection that drops while the leader lives deposes no
one; one whose own connection to the leader is gone too says yes. A leader's crash then costs
about 0.1 s of election instead of the 0.4-0.8 s timeout; a leader cut off without a closed
connection (a partition) is still found by the timeout.

A master about to stop hands its leadership over first (`hand_over`, Raft's TimeoutNow through
PySyncObj's own `transferLeadership`), so that the others do not wait for the closed connection
and an election while writes stall: the request is made on PySyncObj's thread, at each tick
until a follower is caught up enough to take it; meanwhile the log stops growing (the committer
holds this master's proposals, and the followers' forwarded ones are dropped: their tickets find
them not applied once the new leader is known, and they are proposed again there).

PySyncObj 0.3.17 has no hook for any of these. The subclass reaches its election state through
the name-mangled attributes (`_SyncObj__...`); its base (journal_cut.py, which keeps the journal
whole across a crash) refuses to start against a PySyncObj they were not written for.
"""

from __future__ import annotations

from typing import Any

from pysyncobj import FAIL_REASON
from pysyncobj.monotonic import monotonic as monotonic_time
from pysyncobj.syncobj import _RAFT_STATE

from master.store.journal_cut import JournalCutSyncObj

# seconds before a follower whose leader's connection closed asks: the first survivor by address
# after LOST_LEADER_FIRST, each next one LOST_LEADER_STAGGER later, so that two never ask at once
# and split their votes (the first is leader by then, and the others hear it)
LOST_LEADER_FIRST = 0.02
LOST_LEADER_STAGGER = 0.06


class PreVoteSyncObj(JournalCutSyncObj):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._heard_leader_at = 0.0  # when an append_entries of the current term last came
        self._pre_vote_term: int | None = None  # the term a pre-vote round asks about
        self._pre_votes = 0
        self._pre_vote_won = False
        self.pre_vote_rounds = 0  # rounds this master asked for (the cluster status shows it)
        self.term_committed = False  # set on PySyncObj's thread each tick, read by the API's
        self.hand_over = False  # set by a stopping master: give leadership to a caught-up follower
        self._hand_over_after = 0.0  # when to ask again (a transfer asked for is given time to happen)
        super().__init__(*args, **kwargs)
        self._SyncObj__transport.setOnMessageReceivedCallback(self._on_message)
        self._SyncObj__transport.setOnNodeDisconnectedCallback(self._on_disconnected)

    # --- PySyncObj's state, by its mangled names -------------------------------------------
    def _term(self) -> int:
        return self._SyncObj__raftCurrentTerm

    def _log_position(self) -> tuple[int, int]:
        return self._SyncObj__getCurrentLogIndex(), self._SyncObj__getCurrentLogTerm()

    def _send(self, node: Any, message: dict[str, Any]) -> None:
        self._SyncObj__transport.send(node, message)

    def _leader_reachable(self) -> bool:
        leader = self._SyncObj__raftLeader
        return leader is not None and leader in self._SyncObj__connectedNodes

    def _majority(self, votes: int) -> bool:
        return votes > (len(self._SyncObj__otherNodes) + 1) / 2

    # --- the pre-vote round ----------------------------------------------------------------
    def _onTick(self, timeToWait: float = 0.0) -> None:
        now = monotonic_time()
        if (self._SyncObj__raftState in (_RAFT_STATE.FOLLOWER, _RAFT_STATE.CANDIDATE)
                and self._SyncObj__selfNode is not None and not self._SyncObj__transferInProgress
                and self._SyncObj__raftElectionDeadline < now and self._SyncObj__connectedToAnyone()):
            if self._pre_vote_won:
                self._pre_vote_won = False  # PySyncObj's election starts in this tick
            else:
                self._ask_first(now)
        if self.hand_over and self._SyncObj__raftState == _RAFT_STATE.LEADER and now >= self._hand_over_after:
            self.transferLeadership(callback=self._transfer_asked)
        super()._onTick(timeToWait)
        self.term_committed = self._commit_term() == self._term()

    def _transfer_asked(self, _result: Any, error: int) -> None:
        """Denied (no follower has every entry yet): ask at the next tick. Sent: give the election
        the minimum timeout before asking again."""
        if error == FAIL_REASON.SUCCESS:
            self._hand_over_after = monotonic_time() + self._SyncObj__conf.raftMinTimeout

    def _commit_term(self) -> int | None:
        """The term of the entry at the commit index the leader announced, if the log holds it
        (compaction keeps the last applied entry, and a ready master has applied that index)."""
        entries = self._SyncObj__getEntries(self._SyncObj__leaderCommitIndex, 1)
        return entries[0][2] if entries else None

    def _ask_first(self, now: float) -> None:
        """Push the election back one timeout, and ask whether it would be won."""
        self._SyncObj__raftElectionDeadline = now + self._SyncObj__generateRaftTimeout()
        self._pre_vote_term, self._pre_votes = self._term() + 1, 1
        self.pre_vote_rounds += 1
        index, term = self._log_position()
        for node in self._SyncObj__otherNodes:
            self._send(node, {"type": "pre_vote", "term": self._pre_vote_term, "last_log_index": index,
                              "last_log_term": term})
        if self._majority(self._pre_votes):  # a single master
            self._won()

    def _won(self) -> None:
        self._pre_vote_won, self._pre_vote_term = True, None
        self._SyncObj__raftElectionDeadline = 0  # the next tick holds the real election

    def _would_vote(self, message: dict[str, Any]) -> bool:
        if message.get("term", 0) <= self._term():
            return False
        if self._SyncObj__raftState == _RAFT_STATE.LEADER:
            return False  # it leads: a follower whose timer ran out while it can reach it waits
        if (monotonic_time() - self._heard_leader_at < self._SyncObj__conf.raftMinTimeout
                and self._leader_reachable()):
            return False  # a leader is alive as far as this master knows: no election needed
        index, term = self._log_position()
        their_index, their_term = message.get("last_log_index", 0), message.get("last_log_term", 0)
        return their_term > term or (their_term == term and their_index >= index)

    def _on_message(self, node: Any, message: dict[str, Any]) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "pre_vote":
            self._send(node, {"type": "pre_vote_response", "term": message.get("term"),
                              "granted": self._would_vote(message)})
            return
        if kind == "pre_vote_response":
            if message.get("term") == self._pre_vote_term and message.get("granted"):
                self._pre_votes += 1
                if self._majority(self._pre_votes):
                    self._won()
            return
        if kind == "apply_command" and self.hand_over and self._SyncObj__raftState == _RAFT_STATE.LEADER:
            # Handing over: the log stops growing, so a follower catches up and can take over (PySyncObj
            # transfers only to one holding every entry). The follower that forwarded this hears
            # nothing, until the new leader makes PySyncObj answer it LEADER_CHANGED: its ticket then
            # finds it not applied, and it is proposed again, to the new leader (replicated.py).
            return
        if kind == "append_entries" and message.get("term", 0) >= self._term():
            self._heard_leader_at = monotonic_time()
        if kind == "next_node_idx" and message.get("success") and not message.get("reset"):
            self._acknowledged(node, message)
            return
        self._SyncObj__onMessageReceived(node, message)

    def _acknowledged(self, node: Any, message: dict[str, Any]) -> None:
        """A follower's yes to append entries. PySyncObj sets the next index to send it from what the
        yes names; but entries are sent as soon as they are proposed (replicated.RaftTimings.prompt_send),
        so later ones are already on their way: going back would send them again, and the follower,
        which may have applied them, truncates and re-adds them (logged CRITICAL "truncating
        already-applied log entries"). As Raft's pipelining (etcd's progress in its replicate state),
        a yes only moves the next index forward; a no (a reset) still moves it back."""
        sent_up_to = self._SyncObj__raftNextIndex.get(node)
        self._SyncObj__onMessageReceived(node, message)
        if sent_up_to is not None and self._SyncObj__raftNextIndex.get(node, sent_up_to) < sent_up_to:
            self._SyncObj__raftNextIndex[node] = sent_up_to

    def _on_disconnected(self, node: Any) -> None:
        """The leader's connection closed: ask soon rather than at the end of the timeout."""
        self._SyncObj__onNodeDisconnected(node)
        if node == self._SyncObj__raftLeader and self._SyncObj__raftState == _RAFT_STATE.FOLLOWER:
            me = self._SyncObj__selfNode.id
            rank = sum(1 for other in self._SyncObj__otherNodes if other != node and other.id < me)
            soon = monotonic_time() + LOST_LEADER_FIRST + rank * LOST_LEADER_STAGGER
            self._SyncObj__raftElectionDeadline = min(self._SyncObj__raftElectionDeadline, soon)
