"""Instruction–object combinations of the tabletop and the ones held out of training.

A combination is what an episode's instruction asks for. For ``push`` it is a (colour, goal)
pair; every phrasing may be used with it. For ``reach`` it is a (colour, phrasing) pair: the
held-out ones pair a verb with a colour it never appears with in training, although the verb is
seen with the other colours and the colour with the other verbs. Both splits are compositional:
each word of a held-out instruction is seen in training, only the pairing is new.
"""

from __future__ import annotations

from dataclasses import dataclass

COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow")
GOALS: tuple[str, ...] = ("left", "right", "top", "bottom")
TASKS: tuple[str, ...] = ("reach", "push")
SPLITS: tuple[str, ...] = ("train", "heldout", "all")

REACH_TEMPLATES: tuple[str, ...] = (
    "reach the {color} block",
    "move to the {color} block",
    "go to the {color} block",
    "touch the {color} block",
)
PUSH_TEMPLATES: tuple[str, ...] = (
    "push the {color} block to the {goal} goal",
    "move the {color} block to the {goal} goal",
    "slide the {color} block into the {goal} goal",
)


@dataclass(frozen=True, order=True)
class Combination:
    """One instruction–object combination: ``goal`` is None for reach, ``template`` is None for
    push (any push phrasing goes with a push combination)."""

    task: str
    color: str
    goal: str | None = None
    template: int | None = None


HELDOUT: tuple[Combination, ...] = (
    Combination("reach", "yellow", None, 3),  # "touch the yellow block"
    Combination("reach", "blue", None, 2),  # "go to the blue block"
    # one goal per colour and one colour per goal: every colour is pushed to three goals in
    # training and every goal receives three colours, so the words must be read separately
    Combination("push", "red", "right"),
    Combination("push", "green", "top"),
    Combination("push", "blue", "left"),
    Combination("push", "yellow", "bottom"),
)


def all_combinations(task: str) -> tuple[Combination, ...]:
    """Every combination of ``task``, in a fixed order."""
    if task == "reach":
        return tuple(
            Combination("reach", c, None, t) for c in COLORS for t in range(len(REACH_TEMPLATES))
        )
    if task == "push":
        return tuple(Combination("push", c, g) for c in COLORS for g in GOALS)
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def combination_split(task: str, split: str) -> tuple[Combination, ...]:
    """The combinations of ``task`` in ``split`` ("train", "heldout" or "all")."""
    every = all_combinations(task)
    if split == "all":
        return every
    if split == "heldout":
        return tuple(c for c in every if c in HELDOUT)
    if split == "train":
        return tuple(c for c in every if c not in HELDOUT)
    raise ValueError(f"unknown combinations split {split!r}; expected one of {SPLITS}")


def instruction(task: str, color: str, goal: str | None, template: int) -> str:
    """The instruction text of an episode."""
    if task == "reach":
        return REACH_TEMPLATES[template].format(color=color)
    return PUSH_TEMPLATES[template].format(color=color, goal=goal)
