"""``diffusion_action``: Diffusion Policy (Chi et al., 2023): a denoiser conditioned on the
features turns Gaussian noise into an action chunk over a few DDIM steps; trained with
``action_diffusion`` (the ε-prediction MSE at a random noise level).

The project's diffusion pieces are reused, not copied: the noise schedule and the DDIM sampler
(:mod:`modalforge_generators.noise_schedule`) and the conditioned residual MLP denoiser
(:class:`modalforge_generators.diffusion_nets.MLPDenoiser`, here over the ``(k, A)`` chunk).

**How the loss reaches the denoiser.** A head's ``forward(features)`` never sees the target, but
the training loss needs the target, noise and a timestep. So the head's output
(``action_cond``) is the conditioning (the features themselves), and the head exposes
:meth:`DiffusionActionHead.diffusion_loss`; the registered loss calls it through a reference
set by :meth:`ActionDiffusionLoss.bind_model` (not a submodule of the loss: the denoiser's
parameters stay the model's alone, in its optimizer and checkpoint; under DDP the call runs
inside the wrapped forward, so its gradients are averaged as usual). The pipeline builder must
call ``loss.bind_model(model)`` once after building both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from modalforge.contracts import LossOutput, Target
from modalforge.errors import SpecError
from modalforge_generators.diffusion_nets import MLPDenoiser
from modalforge_generators.noise_schedule import (
    NoiseSchedule,
    Prediction,
    Schedule,
    ddim_sample,
)
from modalforge_robotics.heads.base import ActionHead, ActionLoss, draw_normal


class DiffusionActionHead(ActionHead):
    """Diffusion Policy: a denoiser over the ``(k, A)`` chunk conditioned on the features.

    ``timesteps`` training noise levels (``schedule``: cosine, as Diffusion Policy's
    ``squaredcos_cap_v2``), ``prediction`` of ``eps`` (Diffusion Policy) or ``v``, and
    ``sampling_steps`` DDIM steps at run time. The denoiser is a residual MLP of ``layers`` blocks
    of ``width`` whose normalisation is modulated by the timestep and the features.

    :meth:`act` without ``sample`` is deterministic: DDIM (``eta = 0``) from ``x_T = 0``, the mean
    of the prior; with ``sample=True``, from ``x_T ~ N(0, I)`` drawn with ``generator``, and with
    ``eta`` > 0 stochastic steps. Each ``x̂_0`` is clipped to ``[-1, 1]``.
    """

    output_key: ClassVar[str] = "action_cond"
    name: ClassVar[str] = "diffusion_action"

    def __init__(
        self,
        in_dim: int,
        target: Target,
        timesteps: int = 100,
        schedule: Schedule = "cosine",
        prediction: Prediction = "eps",
        sampling_steps: int = 10,
        eta: float = 0.0,
        width: int = 256,
        layers: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim, target)
        path = "model.head.params"
        if timesteps < 2:
            raise SpecError(f"{path}.timesteps", f"must be at least 2, got {timesteps}")
        if not 1 <= sampling_steps <= timesteps:
            raise SpecError(
                f"{path}.sampling_steps",
                f"must be in [1, timesteps = {timesteps}], got {sampling_steps}",
                hint="e.g. 10 DDIM steps for 100 training timesteps",
            )
        if not 0.0 <= eta <= 1.0:
            raise SpecError(f"{path}.eta", f"must be in [0, 1], got {eta}")
        if width < 1 or layers < 1:
            raise SpecError(path, f"width and layers must be positive, got {width}, {layers}")
        if not 0.0 <= dropout < 1.0:
            raise SpecError(f"{path}.dropout", f"must be in [0, 1), got {dropout}")
        try:
            self.schedule = NoiseSchedule(timesteps, schedule, prediction)
        except ValueError as exc:
            raise SpecError(path, str(exc)) from None
        self.sampling_steps = sampling_steps
        self.eta = eta
        self.denoiser = MLPDenoiser(
            (self.horizon, self.action_dim), in_dim, width=width, layers=layers, dropout=dropout
        )

    def forward(self, x: Tensor) -> Tensor:
        """The conditioning the denoiser reads: the features, unchanged."""
        return x

    def diffusion_loss(
        self, cond: Tensor, actions: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Per-step denoising error ``(B, k)`` at a random timestep and noise per sample."""
        n = actions.shape[0]
        source = generator.device if generator is not None else actions.device
        t = torch.randint(0, self.schedule.timesteps, (n,), generator=generator, device=source)
        noise = draw_normal(actions, generator)
        t = t.to(actions.device)
        x_t = self.schedule.add_noise(actions, noise, t)
        out = self.denoiser(x_t, t, cond)
        goal = self.schedule.target(actions, noise, t)
        return (out.float() - goal.float()).square().mean(dim=-1)

    def act(
        self,
        outputs: Mapping[str, Tensor],
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        cond = self._own(outputs)
        shape = (cond.shape[0], self.horizon, self.action_dim)
        source = generator.device if generator is not None else cond.device

        def noise() -> Tensor:
            if not sample:
                return cond.new_zeros(shape)
            return torch.randn(shape, generator=generator, device=source).to(cond)

        with torch.no_grad():
            chunk = ddim_sample(
                self.schedule,
                lambda x, t: self.denoiser(x, t, cond),
                noise,
                steps=self.sampling_steps,
                eta=self.eta if sample else 0.0,
            )
        return chunk.clamp(-1.0, 1.0)


class ActionDiffusionLoss(ActionLoss):
    """The denoising MSE (of ``ε`` or ``v``) of the ``diffusion_action`` head.

    Averaged over the action dimensions and the unpadded steps. Needs :meth:`bind_model` (the
    pipeline builder's job) to reach the head's denoiser.
    """

    name: ClassVar[str] = "action_diffusion"
    head: ClassVar[str] = "diffusion_action"

    def __init__(self, target: Target | None = None, output_key: str = "action_cond") -> None:
        super().__init__(target, output_key)
        self._head: DiffusionActionHead | None = None

    def bind_model(self, model: nn.Module) -> None:
        """Keep a reference to ``model.head`` (the model is ``MultimodalModel``), not a copy."""
        head = getattr(model, "head", model)
        if not isinstance(head, DiffusionActionHead):
            raise SpecError(
                "loss",
                f"action_diffusion trains a diffusion_action head, but the model's head is "
                f"{type(head).__name__}",
                hint="use `head: diffusion_action` with `loss: action_diffusion`",
            )
        object.__setattr__(self, "_head", head)  # a plain reference, not a registered submodule

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        cond, y = self.inputs(outputs, batch)
        head = self._head
        if head is None:
            raise SpecError(
                "loss",
                "action_diffusion has no denoiser to train: it was not bound to the model's "
                "diffusion_action head",
                hint="call loss.bind_model(model) after building the pipeline",
            )
        self.check_chunks((y.shape[0], head.horizon, head.action_dim), y)
        loss = self.reduce(head.diffusion_loss(cond, y), batch)
        return LossOutput(loss, {self.name: loss})
