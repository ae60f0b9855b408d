"""Held-out instruction–object combinations: disjoint from training, covering everything, and
sampled only in their split."""

from __future__ import annotations

import pytest

from modalforge_robotics.envs.combinations import (
    HELDOUT,
    PUSH_TEMPLATES,
    REACH_TEMPLATES,
    all_combinations,
    combination_split,
    instruction,
)


@pytest.mark.parametrize("task", ["reach", "push"])
def test_train_and_heldout_are_disjoint_and_cover_all(task):
    train, held = set(combination_split(task, "train")), set(combination_split(task, "heldout"))
    every = set(combination_split(task, "all"))
    assert train and held and not train & held
    assert train | held == every == set(all_combinations(task))
    assert held == {c for c in HELDOUT if c.task == task}
    assert len(every) == 16  # 4 colours × 4 phrasings (reach) or × 4 goals (push)


def test_heldout_pairs_are_compositional():
    """Each part of a held-out combination is seen in training, only the pairing is new."""
    for task in ("reach", "push"):
        train = combination_split(task, "train")
        for held in combination_split(task, "heldout"):
            assert any(c.color == held.color for c in train)
            if task == "push":
                assert any(c.goal == held.goal for c in train)
            else:
                assert any(c.template == held.template for c in train)
    # push: every colour is pushed to three goals in training, every goal receives three
    # colours, so neither word predicts the other
    train = combination_split("push", "train")
    for color in ("red", "green", "blue", "yellow"):
        assert len({c.goal for c in train if c.color == color}) == 3
    for goal in ("left", "right", "top", "bottom"):
        assert len({c.color for c in train if c.goal == goal}) == 3


def test_instruction_text():
    assert instruction("reach", "red", None, 0) == "reach the red block"
    assert instruction("push", "blue", "left", 0) == "push the blue block to the left goal"
    assert len(REACH_TEMPLATES) == 4 and len(PUSH_TEMPLATES) == 3


@pytest.mark.parametrize("task", ["reach", "push"])
def test_envs_sample_only_their_split(task):
    pytest.importorskip("gymnasium")
    from modalforge_robotics.envs.tabletop import TabletopEnv

    seen = {}
    for split in ("train", "heldout", "all"):
        env = TabletopEnv(task=task, combinations=split)
        seen[split] = set()
        for seed in range(150):
            _, info = env.reset(seed=seed)
            seen[split].add(env.combination)
            assert info["heldout"] == (env.combination in HELDOUT)
    assert seen["train"] == set(combination_split(task, "train"))
    assert seen["heldout"] == set(combination_split(task, "heldout"))
    assert seen["all"] == set(all_combinations(task))
