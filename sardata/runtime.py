"""Where code runs and how it is seeded: the one device choice (torch and FAISS), the one seeding helper, and the
one way to join a ``torchrun`` world (:func:`init_distributed`, :func:`is_main_process`, :func:`shard`, ...).

torch and faiss are imported inside the functions, so importing this module stays cheap.

Distributed runs: ``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them (and nothing else) and joins the process group, NCCL on CUDA, gloo on CPU.
Without ``WORLD_SIZE`` every helper answers for a world of one process, so library code calls them unconditionally.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import torch


def resolve_device(device: "str | torch.device | None" = "auto") -> "torch.device":
    """The torch device to use: ``device`` as given, or CUDA when available, else CPU.

    Args:
        device ("auto"): ``"auto"`` (or None / ``""``) for the automatic choice, else a torch device or its name
            (``"cpu"``, ``"cuda:1"``, ...).
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device and device != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def faiss_use_gpu(gpu: bool | str = "auto") -> bool:
    """Whether FAISS indexes go to the GPU: with ``gpu="auto"`` when faiss sees one (faiss-gpu and a device).

    Args:
        gpu ("auto"): ``"auto"``, or True / False to force it.

    Raises:
        ValueError: ``gpu=True`` but faiss sees no GPU.
    """
    import faiss  # lazily: importing sardata must not load faiss

    num_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if gpu == "auto":
        return num_gpus > 0
    if gpu and num_gpus == 0:
        raise ValueError("gpu=True but faiss sees no GPU (install faiss-gpu instead of faiss-cpu)")
    return bool(gpu)


def seed_everything(seed: int) -> None:
    """Seeds Python's ``random``, NumPy's global generator and torch (all devices) with ``seed``."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------- torchrun


def run_concurrently(fn, items: Sequence, processes: int | None = None, devices: Sequence = ()) -> list:
    """``[fn(item) for item in items]``, several at once on a CPU: each call in its own process with one torch
    thread; results in ``items`` order.

    On a CPU, two small models side by side use two cores better than one model with two intra-op threads (small
    convolutions scale poorly across threads). A result must not depend on what runs beside it, so ``fn`` must seed
    from its item alone. Runs one after the other (in this process) for one item, one process, any CUDA device in
    ``devices`` (or CUDA available and ``devices`` not all ``"cpu"``), or under ``torchrun``.

    Args:
        fn: a picklable (module-level) function of one item.
        items: its arguments.
        processes (None): default ``min(len(items), os.cpu_count())``.
        devices (()): the device option of each item (None / "auto" / "cpu" / "cuda:0" ...).
    """
    import torch

    processes = processes or min(len(items), os.cpu_count() or 1)
    on_cuda = any(str(d or "").startswith("cuda") for d in devices) or (
        torch.cuda.is_available() and not (devices and all(d == "cpu" for d in devices)))
    if processes <= 1 or len(items) <= 1 or on_cuda or "WORLD_SIZE" in os.environ:
        return [fn(item) for item in items]
    import concurrent.futures
    import functools
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
        return list(pool.map(functools.partial(_one_thread, fn), items))


def _one_thread(fn, item):
    import torch

    torch.set_num_threads(1)
    return fn(item)


def init_distributed(device: "str | torch.device | None" = None) -> dict:
    """Joins the process group when launched by ``torchrun`` (``WORLD_SIZE`` set), else does nothing.

    A process group that already exists (the caller's own) is used as it is and left for the caller to destroy.

    Args:
        device (None): the run's ``--device``; CUDA (and NCCL, one GPU per ``LOCAL_RANK``) only when CUDA is
            available and ``device`` is None/"auto"/a CUDA device, else gloo on CPU.

    Returns:
        ``{"distributed", "rank", "world_size", "local_rank", "owns_group"}``; ``owns_group`` tells whether this
        call created the group (then the caller ends it with :func:`cleanup_distributed`).
    """
    if "WORLD_SIZE" not in os.environ:
        return {"distributed": False, "rank": 0, "world_size": 1, "local_rank": 0, "owns_group": False}
    import torch
    import torch.distributed as dist

    world_size = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device in (None, "", "auto") or str(device).startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return {"distributed": True, "rank": dist.get_rank(), "world_size": dist.get_world_size(),
            "local_rank": local_rank, "owns_group": owns_group}


def _initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def cleanup_distributed() -> None:
    """Leaves the process group (when there is one)."""
    if _initialized():
        import torch.distributed as dist

        dist.destroy_process_group()


def get_rank() -> int:
    """This process's rank in the process group (0 outside one)."""
    if not _initialized():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def get_world_size() -> int:
    """Processes in the process group (1 outside one)."""
    if not _initialized():
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def is_main_process() -> bool:
    """Rank 0, or no process group: the one process that writes checkpoints, histories and FiftyOne fields."""
    return get_rank() == 0


def barrier() -> None:
    """Waits for every rank (no-op outside a process group)."""
    if _initialized():
        import torch.distributed as dist

        dist.barrier()


def shard(items: Sequence, rank: int | None = None, world_size: int | None = None) -> list:
    """This rank's share of ``items``: every ``world_size``-th item from position ``rank`` (all of them outside a
    process group). The shares of all ranks are disjoint and cover ``items``."""
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    return list(items[rank::world_size])


def all_gather_list(items: list) -> list:
    """The concatenation, in rank order, of every rank's ``items`` (picklable; meant for small lists such as ids)."""
    if not _initialized():
        return list(items)
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(items))
    return [item for part in gathered for item in part]


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the ranks (``values`` itself outside a process group); every rank must pass the
    same keys."""
    if not _initialized() or not values:
        return dict(values)
    import torch
    import torch.distributed as dist

    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    tensor /= dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, tensor.tolist())}
