"""The prompts a generation benchmark asks for, with what each prompt asks (for the judges).

- digits: ``"a handwritten <name>"`` for each digit; judged by :class:`DigitsJudge`.
- shapes: the canonical caption of every colour × shape × position, seen and held-out
  combinations alike; judged by :class:`ShapesJudge` per attribute, reported for the two groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

DIGIT_TEMPLATE = "a handwritten {}"


@dataclass
class PromptSet:
    """Prompt texts with their labels; ``held_out[i]``: prompt i names a held-out combination."""

    kind: str
    texts: list[str]
    labels: dict[str, Tensor]  # attribute → (P,) prompted value
    held_out: Tensor  # (P,) bool
    real: dict[str, Tensor]  # split → real images for KID
    real_index: dict[str, Tensor]  # split → the prompt each real image matches

    def real_images(self, split: str) -> Tensor:
        return self.real[split]

    def grid_rows(self, limit: int = 12) -> list[int]:
        """Prompts shown in sample grids: every digit; for shapes every held-out prompt at one
        position and as many seen ones."""
        if self.kind == "digits":
            return list(range(len(self.texts)))
        position = self.labels["position"]
        held = [i for i in range(len(self.texts)) if self.held_out[i] and position[i] == 4]
        seen = [i for i in range(len(self.texts)) if not self.held_out[i] and position[i] == 4]
        step = max(1, len(seen) // max(1, limit - len(held)))
        return held + seen[::step][: max(0, limit - len(held))]

    def judge(self, judge: Any, images: Tensor) -> dict[str, Any]:
        """Judged accuracy of ``images (P, N, C, H, W)`` against the prompts' labels."""
        p, n = images.shape[:2]
        flat = images.reshape(p * n, *images.shape[2:])
        if self.kind == "digits":
            labels = self.labels["digit"].repeat_interleave(n)
            return {"accuracy": judge.score(flat, labels)}
        predicted = judge.predict(flat)
        out: dict[str, Any] = {}
        held = self.held_out.repeat_interleave(n)
        for group, mask in (("seen", ~held), ("held_out", held)):
            if not mask.any():
                continue
            correct = {
                attr: predicted[attr][mask] == self.labels[attr].repeat_interleave(n)[mask]
                for attr in ("color", "shape", "position")
            }
            scores = {attr: float(c.float().mean()) for attr, c in correct.items()}
            scores["all"] = float(torch.stack(list(correct.values())).all(0).float().mean())
            scores["mean_attribute"] = sum(scores[a] for a in correct) / len(correct)
            out[group] = scores
        return out

    def judge_info(self, judge: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"prompts": len(self.texts)}
        if self.kind == "digits":
            info["svc_real_test_accuracy"] = judge.test_accuracy
        else:
            info["held_out_prompts"] = int(self.held_out.sum())
        return info


def judge_prompts(
    kind: str, params: dict[str, Any], cache_dir: Path | None = None
) -> tuple[Any, PromptSet]:
    """The judge for ``kind`` (trained on real data) and the benchmark's prompts."""
    from modalforge_apps.generation.judges import DigitsJudge, ShapesJudge

    if kind == "digits":
        from modalforge_datasets.digits import CLASS_NAMES

        judge = DigitsJudge(cache_dir=cache_dir, **params)
        texts = [DIGIT_TEMPLATE.format(name) for name in CLASS_NAMES]
        real = {s: judge.real_images(s)[0] for s in ("train", "test")}
        index = {s: judge.real_images(s)[1].long() for s in ("train", "test")}
        labels = {"digit": torch.arange(len(CLASS_NAMES))}
        held = torch.zeros(len(texts), dtype=bool)
        return judge, PromptSet("digits", texts, labels, held, real, index)
    from modalforge_datasets.shapes import COLORS, POSITIONS, SHAPES, ShapesDataset, caption

    data_params = dict(params.pop("data", {}))
    judge = ShapesJudge(cache_dir=cache_dir, **params)
    data = ShapesDataset(image_size=judge.image_size, **data_params)
    held_combos = set(data.held_out)
    texts, labels, held = [], {"color": [], "shape": [], "position": []}, []
    for c in range(len(COLORS)):
        for s in range(len(SHAPES)):
            for p in range(len(POSITIONS)):
                texts.append(caption(c, s, p))
                labels["color"].append(c)
                labels["shape"].append(s)
                labels["position"].append(p)
                held.append(c * len(SHAPES) + s in held_combos)
    real, index = {}, {}
    for s in ("train", "test"):
        t = data.tensors(s)
        real[s] = t["image"]
        index[s] = (t["color"] * len(SHAPES) + t["shape"]) * len(POSITIONS) + t["position"]
    return judge, PromptSet(
        "shapes",
        texts,
        {k: torch.tensor(v) for k, v in labels.items()},
        torch.tensor(held),
        real,
        {s: i.long() for s, i in index.items()},
    )
