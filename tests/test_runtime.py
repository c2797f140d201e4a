"""Device choice and seeding (sardata.runtime)."""

import random

import numpy as np
import pytest
import torch

from sardata import runtime


def test_resolve_device():
    auto = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.resolve_device() == auto
    assert runtime.resolve_device(None) == auto
    assert runtime.resolve_device("auto") == auto
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(RuntimeError):
        runtime.resolve_device("not-a-device")


def test_faiss_use_gpu_matches_what_faiss_sees():
    faiss = pytest.importorskip("faiss")
    has_gpu = (faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0) > 0
    assert runtime.faiss_use_gpu() is has_gpu
    assert runtime.faiss_use_gpu(False) is False
    if not has_gpu:
        with pytest.raises(ValueError, match="faiss-gpu"):
            runtime.faiss_use_gpu(True)


def test_seed_everything_repeats_all_three_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    runtime.seed_everything(7)
    first = draw()
    runtime.seed_everything(7)
    assert draw() == first
    runtime.seed_everything(8)
    assert draw() != first


def test_run_concurrently_keeps_the_order_and_gives_each_process_one_thread():
    import operator

    import torch

    from sardata.runtime import run_concurrently

    assert run_concurrently(abs, [-3, 1, -2], processes=2, devices=["cpu"] * 3) == [3, 1, 2]
    # in the worker processes: one intra-op thread each, whatever this process has
    assert run_concurrently(operator.call, [torch.get_num_threads] * 2, processes=2, devices=["cpu"] * 2) == [1, 1]
    # one item runs here, untouched
    assert run_concurrently(operator.call, [torch.get_num_threads], devices=["cpu"]) == [torch.get_num_threads()]
