"""The one warm-up rule (``sardata.train.engine.warmup_length``) and the trainers that use it."""

from __future__ import annotations

import pytest
import torch

from sardata.train import engine
from sardata.train.distill_teacher import Schedule, fit


def test_warmup_length_caps_at_a_quarter_and_before_the_first_step():
    # the --quick student: 120 steps, warm-up 100, ×0.1 at steps 80 and 110 → 30
    assert engine.warmup_length(100, 120, 80) == 30
    # the --quick teacher: 1200 steps, first step at 800 → its 100 unchanged
    assert engine.warmup_length(100, 1200, 800) == 100
    # a first step earlier than ¼ of the run ends the warm-up there
    assert engine.warmup_length(100, 400, 40) == 40
    assert engine.warmup_length(500, 1000) == 250  # no step (cosine): the quarter alone
    assert engine.warmup_length(10, 1000, 5) == 5
    assert engine.warmup_length(100, 3) == 0  # too short to warm up at all
    assert engine.warmup_length(0, 120, 80) == 0


def test_quick_student_lr_factor_at_hand_computed_iterations():
    total, steps = 120, (80, 110)
    factor = engine.warmup_step_lambda(1, engine.warmup_length(100, total, steps[0]), 0.001, steps, 0.1)
    assert factor(0) == pytest.approx(0.001)
    assert factor(15) == pytest.approx(0.001 * 0.5 + 0.5)  # half-way: 0.5005
    assert factor(29) == pytest.approx(0.001 / 30 + 29 / 30)
    assert factor(30) == 1.0 and factor(79) == 1.0  # full lr for 50 steps
    assert factor(80) == pytest.approx(0.1) and factor(109) == pytest.approx(0.1)
    assert factor(110) == pytest.approx(0.01) and factor(119) == pytest.approx(0.01)
    # ≥ ¾ of the run at full or decaying lr
    assert sum(factor(i) in (1.0, pytest.approx(0.1), pytest.approx(0.01)) for i in range(total)) >= 90
    # the defect this replaces: warm-up capped only at the run (100) peaks at 0.8 × lr, just before step 80
    old = engine.warmup_step_lambda(1, min(100, total), 0.001, steps, 0.1)
    assert old(79) == pytest.approx(0.001 * 0.21 + 0.79)
    assert max(old(i) for i in range(total)) < 0.8


def test_teacher_schedule_is_unchanged_by_the_rule():
    total, steps = 1200, (800, 1100)
    new = engine.warmup_step_lambda(1, engine.warmup_length(100, total, steps[0]), 0.001, steps, 0.1)
    old = engine.warmup_step_lambda(1, min(100, total), 0.001, steps, 0.1)
    assert all(new(i) == old(i) for i in range(total))
    assert new(50) == pytest.approx(0.001 * 0.5 + 0.5) and new(100) == 1.0 and new(800) == pytest.approx(0.1)


def test_cosine_warmup_capped_at_a_quarter():
    factor = engine.warmup_cosine_lambda(40, engine.warmup_length(100, 40), 0.001, final_factor=0.01)
    assert factor(0) == pytest.approx(0.001)
    assert factor(5) == pytest.approx(0.001 * 0.5 + 0.5)  # warm-up of 10 = 40 // 4
    assert factor(10) == pytest.approx(1.0)
    assert factor(40) == pytest.approx(0.01)


class _Spy(Exception):
    pass


@pytest.mark.parametrize("epochs, expected", [(3, 30), (30, 100)])
def test_distill_fit_uses_the_rule(monkeypatch, tmp_path, epochs, expected):
    """fit (teacher and students alike): 40 steps per epoch; 3 epochs → warm-up 30, 30 epochs → 100."""
    seen = {}

    def spy(iters_per_epoch, warmup_iters, warmup_factor, lr_steps, gamma):
        seen.update(warmup=warmup_iters, steps=tuple(lr_steps))
        raise _Spy

    monkeypatch.setattr(engine, "warmup_step_lambda", spy)
    model = torch.nn.Linear(2, 2)
    train_set = [(torch.zeros(3, 4, 4), {"boxes": torch.zeros(0, 4)}) for _ in range(160)]
    with pytest.raises(_Spy):
        fit(model, train_set, Schedule(epochs=epochs, batch_size=4, optimizer="adamw", warmup_iters=100),
            torch.device("cpu"), tmp_path, model, {}, progress=False)
    total = 40 * epochs
    assert seen == {"warmup": expected, "steps": (int(total * 8 / 12), int(total * 11 / 12))}
