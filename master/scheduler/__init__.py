"""The pure scheduler: `Scheduler.schedule(snapshot, pods)` → bindings and reasons, no I/O."""

from master.scheduler.schedule import Scheduler, SchedulerConfig, ScheduleResult, unschedulable_message
from master.scheduler.snapshot import NodeInfo, PodInfo, Snapshot, build_snapshot, pod_info

__all__ = ["NodeInfo", "PodInfo", "ScheduleResult", "Scheduler", "SchedulerConfig", "Snapshot",
           "build_snapshot", "pod_info", "unschedulable_message"]
