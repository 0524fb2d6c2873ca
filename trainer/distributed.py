"""Training on several processes under torchrun: the process group, who writes, and global sums.

torchrun starts one process per GPU (or CPU slot) and tells each its RANK, LOCAL_RANK and WORLD_SIZE. Every
process trains on its own shard of each batch, DistributedDataParallel averages the gradients, and only rank 0
prints, logs and saves. Without torchrun (WORLD_SIZE unset or 1) every function here does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from trainer.errors import UserError

TIMEOUT = timedelta(minutes=10)  # a rank that stops answering brings the others down after this, not never


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the one process that prints, writes TensorBoard, metrics, checkpoints and summaries."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str) -> torch.device:
    """Join torchrun's process group (nccl between GPUs, gloo on CPUs); the device this process trains on."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device in ("auto", "cuda") and torch.cuda.is_available()) or device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=TIMEOUT)
    return torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_same_config(settings: dict[str, Any]) -> None:
    """Every rank must train the same config (given as flat `key: value` settings): a rank started with other
    overrides is an error on all ranks, naming the keys that differ."""
    if world_size() == 1:
        return
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    digests: list[Any] = [None] * world_size()
    dist.all_gather_object(digests, (digest, settings))
    differing = [r for r, (d, _) in enumerate(digests) if d != digests[0][0]]
    if differing:
        first, other = digests[0][1], digests[differing[0]][1]
        keys = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
        raise UserError(
            f"rank {differing[0]} was started with another config than rank 0 (they differ in {', '.join(keys)})",
            fix="start every process with the same config file and overrides (torchrun passes the same arguments "
            "to all of them; on several machines, check each machine's command line)",
        )


def sum_across(values: list[torch.Tensor]) -> list[torch.Tensor]:
    """The sums of these tensors over all ranks (one all_reduce); the tensors themselves on one process."""
    if world_size() == 1 or not values:
        return values
    flat = torch.cat([v.detach().double().reshape(-1) for v in values])
    dist.all_reduce(flat)
    out, start = [], 0
    for v in values:
        out.append(flat[start : start + v.numel()].reshape(v.shape).to(v.dtype))
        start += v.numel()
    return out


def sum_with_count(values: list[torch.Tensor], count: int) -> tuple[list[torch.Tensor], int]:
    """Sums over all ranks of these tensors and of a count of samples, in one all_reduce."""
    if world_size() == 1:
        return values, count
    device = values[0].device if values else torch.device("cuda" if dist.get_backend() == "nccl" else "cpu")
    *summed, total = sum_across([*values, torch.tensor(count, dtype=torch.float64, device=device)])
    return summed, int(total.item())


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model with every batch norm layer computing its statistics over all processes' parts of the batch.
    The weights stay the same tensors, so an optimizer made before still updates them."""
    if device.type != "cuda":
        raise UserError(
            f"train.sync_batchnorm needs CUDA GPUs (torch's SyncBatchNorm works only there), and this run is on "
            f"{device.type}",
            fix="train.sync_batchnorm=false: each process's batch norm then uses its own part of the batch",
            key="train.sync_batchnorm",
        )
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def buffers_of_rank_0(model: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (batch norm's running mean and variance, counters): what DDP does at
    each training forward, done once more before an evaluation, so that every process evaluates one model."""
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def shard_of(batch: torch.Tensor) -> torch.Tensor:
    """This rank's part of a batch of sample indices: the ranks' parts together are the whole batch."""
    return batch.tensor_split(world_size())[rank()] if world_size() > 1 else batch
