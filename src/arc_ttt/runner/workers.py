"""More than one GPU: one worker process per device, all pulling tasks from one shared counter.

Launch with torchrun, which starts the processes and hosts a TCP key-value store for them:

    torchrun --nproc-per-node=4 -m arc_ttt run --config configs/kaggle-4xL4-12h.yaml

Each worker takes the next task with an atomic `add` on that store, so a slow task never leaves
the other devices idle. Workers share the output folder: each appends to its own journal, and any
worker that finishes a task merges every journal into submission.json under a file lock. A single
process (no torchrun) is simply worker 0 of 1 with a local counter.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class Worker:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    store: Any = None  # torch.distributed.Store shared by the workers; None for one process
    _counters: dict = field(default_factory=dict)

    def add(self, key: str, amount: int = 1) -> int:
        """Atomically add to a shared counter and return the new value."""
        if self.store is None:
            self._counters[key] = self._counters.get(key, 0) + amount
            return self._counters[key]
        return int(self.store.add(key, amount))

    def next_index(self) -> int:
        """The next task index nobody has taken yet (0, 1, 2, ... across all workers)."""
        return self.add("next", 1) - 1

    def barrier(self, name: str, timeout: float = 600.0) -> None:
        """Wait until every worker has reached `name` (or the timeout passed: never hang a run)."""
        if self.store is None:
            return
        self.add(name, 1)
        deadline = time.monotonic() + timeout
        while self.add(name, 0) < self.world_size and time.monotonic() < deadline:
            time.sleep(0.1)

    def device(self, configured: str) -> str:
        """Worker k uses cuda:k when the config says auto and there are GPUs."""
        if self.world_size > 1 and configured == "auto":
            import torch  # only with several workers: the simulated runs stay torch-free

            if torch.cuda.is_available():
                return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return configured


def from_env(env: Mapping[str, str] = os.environ) -> Worker:
    """The worker this process is: from torchrun's variables, or the only one."""
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Worker()
    from torch.distributed import PrefixStore, TCPStore  # only under torchrun

    rank = int(env["RANK"])
    use_agent = env.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    # torchrun's agent already serves a store at MASTER_PORT; without torchrun, rank 0 hosts one there.
    base = TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), world, is_master=(rank == 0 and not use_agent),
                    wait_for_workers=False)
    run_id = f"arc_ttt/{env.get('TORCHELASTIC_RUN_ID', 'run')}/{env.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    return Worker(rank, world, int(env.get("LOCAL_RANK", rank)), PrefixStore(run_id, base))
