"""A trained pipeline as a closed-loop policy: observations → model → action head → executed
action, un-normalised with the action statistics stored in the checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from modalforge.errors import DataError, SpecError
from modalforge_robotics.rollout.observations import ObservationFrames

Execution = Literal["ensemble", "receding", "chunk"]


class TrainedPolicy:
    """Drives the rollout loop with a :class:`~modalforge.pipeline.TrainedPipeline` whose head
    is an action head (``act`` → normalised chunk ``(B, k, A)``).

    ``execution`` says how a chunk becomes actions: ``ensemble`` (ACT's temporal ensembling of
    every chunk predicted for the current step, weights ``exp(-m·i)``), ``receding`` (the first
    action of a chunk predicted every step) or ``chunk`` (the whole chunk open loop, then a new
    prediction). ``sample`` draws from the head's distribution instead of its most likely action.
    """

    def __init__(
        self,
        trained: Any,  # noqa: ANN401 - a TrainedPipeline
        execution: Execution = "ensemble",
        ensemble_m: float = 0.01,
        sample: bool = False,
        seed: int = 0,
    ) -> None:
        from modalforge_robotics.data.normalize import ActionNormalizer
        from modalforge_robotics.heads.base import ActionHead

        if execution not in ("ensemble", "receding", "chunk"):
            raise SpecError(
                "--execution", f"unknown execution {execution!r}", hint="ensemble, receding, chunk"
            )
        head = getattr(trained.model, "head", None)
        if not isinstance(head, ActionHead):
            raise SpecError(
                "model.head",
                f"{type(head).__name__} is not an action head, so the model is not a policy",
                hint="train with an action head (mse_action, gmm_action, binned_action, "
                "diffusion_action)",
            )
        state = trained.dataset_state
        if "action_normalizer" not in state:
            raise DataError(
                f"checkpoint {trained.checkpoint} stores no action statistics",
                hint="train the policy on an episode data set (robomimic, lerobot), which stores "
                "them with every checkpoint",
            )
        self.trained, self.head = trained, head
        self.normalizer = ActionNormalizer.from_state_dict(state["action_normalizer"])
        self.frames = ObservationFrames(state)
        self.execution, self.m, self.sample = execution, float(ensemble_m), sample
        self.generator = torch.Generator(device=trained.device).manual_seed(seed)
        pipeline = trained.pipeline
        self._chains = {
            name: chain
            for name in pipeline.modalities
            if (
                chain := pipeline.data_transforms.chain(
                    name, train=False, then=pipeline.transforms.get(name)
                )
            )
            is not None
        }
        self._slots: dict[int, Any] = {}  # slot → its ensembler, or its pending open-loop actions

    @property
    def action_dim(self) -> int:
        return self.normalizer.dim

    def reset(self, slot: int) -> None:
        from modalforge_robotics.heads.ensembling import TemporalEnsembler

        self.frames.reset(slot)
        self._slots[slot] = TemporalEnsembler(self.m) if self.execution == "ensemble" else []

    def act(self, observations: Sequence[dict[str, Any]], slots: Sequence[int]) -> np.ndarray:
        for obs, slot in zip(observations, slots, strict=True):
            self.frames.push(slot, obs)
        need = [s for s in slots if self.execution != "chunk" or not self._slots[s]]
        chunks = dict(zip(need, self.predict(need), strict=True)) if need else {}
        actions = []
        for slot in slots:
            if self.execution == "ensemble":
                actions.append(self._slots[slot].update(chunks[slot]))
            elif self.execution == "receding":
                actions.append(chunks[slot][0])
            else:
                if slot in chunks:
                    self._slots[slot] = list(chunks[slot])
                actions.append(self._slots[slot].pop(0))
        normalised = torch.stack(actions).cpu().numpy()
        return np.asarray(self.normalizer.unnormalize(normalised), dtype=np.float32)

    def _check_shapes(self, sample: dict[str, Any]) -> None:
        """Each observation modality has the shape the policy was trained on."""
        modalities = self.trained.pipeline.dataset.modalities
        for name, value in sample.items():
            expected = modalities[name].shape if name in modalities else None
            if expected is None or not isinstance(value, torch.Tensor):
                continue
            if tuple(value.shape) != tuple(expected):
                key = modalities[name].metadata.get("key", name)
                raise DataError(
                    f"the environment's {key!r} observation gives {name} of shape "
                    f"{tuple(value.shape)}, but the policy was trained on {tuple(expected)}",
                    hint="roll out in the environment (and with the --env-param values, e.g. "
                    "image_size) the demonstrations came from",
                )

    @torch.no_grad()
    def predict(self, slots: Sequence[int]) -> torch.Tensor:
        """The normalised chunks ``(len(slots), k, A)`` for the slots' current observations."""
        from modalforge.engine.data import collate_samples
        from modalforge.engine.runtime import move_to_device

        samples = []
        for slot in slots:
            sample = self.frames.sample(slot)
            self._check_shapes(sample)
            for name, chain in self._chains.items():
                if name in sample:
                    sample[name] = chain(sample[name])
            samples.append(sample)
        batch = move_to_device(
            collate_samples(samples, collates=self.trained.pipeline.collates),
            self.trained.device,
        )
        with self.trained.precision.context():
            outputs = self.trained.model(batch)
        chunk = self.head.act(outputs, sample=self.sample, generator=self.generator)
        return chunk.float()
