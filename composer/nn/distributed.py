"""DistributedDataParallel: where this process stands in a ``torchrun`` job, and the few collective steps
training takes (the process group, one seed per rank, the global batch's loss, a clean exit).

    torchrun --nproc_per_node 4 -m composer train --ddp --config ... --out ...

``batch_size`` stays the global batch, split evenly; each rank draws windows and masks from its own
random stream, and DDP averages the gradients, scaled so the step is the one a single process would take
on the whole global batch. Rank 0 validates, decides on stopping, and writes.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from composer.errors import MozartError


@dataclass
class Ranks:
    """Where this process stands in a ``torchrun`` job (a lone process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # under DDP: this rank's device (cuda:LOCAL_RANK or cpu)
    active: bool = False  # True under --ddp, even with a single process

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, value):
        """Rank 0's ``value`` (anything picklable) on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank: one small tensor, cheap enough for every step."""
        if not self.active:
            return flag
        tensor = torch.tensor([float(flag)], device=self.device)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())


def ddp_world_size() -> int:
    """The number of processes ``torchrun`` started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def process_group(enabled: bool, device_name: str = "auto"):
    """Join the ``torchrun`` job for the block: gloo on the CPU, nccl on CUDA (one GPU per
    process, ``LOCAL_RANK``'s). Yields ``Ranks``. A group already open (a recipe's stages
    share one) is used and left open; one opened here is destroyed at the end, errors included."""
    if not enabled:
        yield Ranks()
        return
    if "LOCAL_RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise MozartError("--ddp trains as one process of a torchrun job: "
                          "torchrun --nproc_per_node N -m composer train --ddp ...")
    local_rank = int(os.environ["LOCAL_RANK"])
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise MozartError(f"--ddp trains on CUDA GPUs or on the CPU, not on {device.type}.")
    created = not dist.is_initialized()
    if created:  # the others wait while rank 0 validates and saves: allow that 30 minutes (nccl's default is 10)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), device, True)
    except BaseException:
        if created and dist.is_initialized():
            dist.destroy_process_group()
        raise
    if created and dist.is_initialized():
        # every rank finished (rank 0 writes last) before the group goes: a gloo rank whose peer
        # tore its connections down first could abort at exit ("terminate called", exit -6)
        dist.barrier()
        dist.destroy_process_group()


def rank_seed(entropy, rank: int):
    """Rank 0 keeps the single-process seed (a one-process run is unchanged); every other
    rank gets an independent stream of the same seed."""
    return entropy if rank == 0 else np.random.SeedSequence(entropy, spawn_key=(rank,))


def global_batch_loss(loss: torch.Tensor, counts: torch.Tensor, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Under DDP: the global batch's mean NLL per scored cell (what one process would log for
    the whole batch), and the objective to backpropagate: this rank's NLL sum over the global
    cell count, times ``world``, since DDP averages the ranks' gradients. Their average is then
    exactly the gradient of the global mean, whatever the split of the scored cells."""
    local_count = counts.sum()
    local_sum = loss * local_count.clamp(min=1)
    totals = torch.stack([local_sum.detach().float(), local_count.float()])
    dist.all_reduce(totals)
    total_count = totals[1].clamp(min=1)
    return totals[0] / total_count, local_sum * (world / total_count)


def leave_torchrun() -> None:
    """End a --ddp process once its work is saved and said, without the interpreter's teardown: there,
    torch's gloo threads abort about one run in four ("terminate called without an active exception",
    exit -6), which torchrun reports as a failed job although everything was written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
