"""The shared retry loop with a fake engine: a task whose worker was lost *after* it committed its
partition (a node died before the result came back) is not run again — running it again would
commit the partition twice — while a lost task that had not committed is retried."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from sedscale.engines.base import Engine


class LostWorkerFakeEngine(Engine):
    """Every partition's first attempt fails as if its worker were lost."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    @property
    def slots(self) -> int:
        return 2

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def submit(self, ref: str, *args: Any) -> Future[Any]:
        pid = int(args[0])
        future: Future[Any] = Future()
        if pid not in self.calls:
            future.set_exception(RuntimeError("ManagerLost: the worker's node is gone"))
        else:
            future.set_result(pid)
        self.calls.append(pid)
        return future


def test_a_task_lost_after_its_commit_is_not_run_again() -> None:
    engine = LostWorkerFakeEngine()
    committed_before_loss = {1}
    outcomes = {o.partition_id: o for o in engine.map_partitions(
        "unused:task", [0, 1, 2], lambda pid: (pid,), retries=1, committed=committed_before_loss.__contains__)}
    assert all(o.ok for o in outcomes.values())
    assert engine.calls.count(1) == 1, "partition 1 was committed before its worker was lost: run again"
    assert engine.calls.count(0) == 2 and engine.calls.count(2) == 2  # not committed: retried
    assert outcomes[1].attempts == 1 and outcomes[0].attempts == 2


def test_without_the_check_every_lost_task_is_retried() -> None:
    engine = LostWorkerFakeEngine()
    outcomes = list(engine.map_partitions("unused:task", [0, 1], lambda pid: (pid,), retries=1))
    assert all(o.ok for o in outcomes) and sorted(engine.calls) == [0, 0, 1, 1]
