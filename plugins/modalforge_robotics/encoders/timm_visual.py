"""``timm_visual``: any timm backbone as a camera (or depth) trunk, FiLM-conditioned on the
instruction after each of its feature stages (RT-1 conditions its EfficientNet the same way)
and pooled to spatial-softmax keypoints or by averaging."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.deps import require
from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge_robotics.encoders.layers import FiLM, map_readout
from modalforge_robotics.encoders.visual import VisualPool


class TimmVisualEncoder(Encoder):
    """A timm model's feature stages (``features_only``) → the last stage's maps → keypoints.

    ``condition_on: [instruction]`` puts a zero-initialised FiLM layer after every stage in
    ``film_stages`` (default: all), so training starts from the backbone's own features.
    ``out_index`` picks the stage whose maps are pooled (default: the last; an earlier one keeps
    more spatial resolution for keypoints). Weights are never downloaded: ``weights_file`` is a
    local ``.safetensors`` / ``.pth`` file of the full model, loaded by timm (which adapts the
    first convolution to the modality's channels: depth, RGB-D, stacked frame histories).
    ``freeze`` keeps the backbone's weights and statistics; FiLM, pooling and projection train.
    ``tokens: true`` also gives the pooled stage's maps as position-tagged tokens.
    """

    accepts = (ModalityKind.IMAGE2D, ModalityKind.DEPTH)

    def __init__(
        self,
        modality: Modality,
        model_name: str = "resnet18",
        weights_file: str | None = None,
        out_index: int = -1,
        pool: VisualPool = "spatial_softmax",
        num_keypoints: int | None = 32,
        out_dim: int | None = None,
        freeze: bool = False,
        condition_on: list[str] = [],  # noqa: B006 - read-only default, copied below
        condition_dim: int | None = None,
        tokens: bool = False,
        film_stages: list[int] | None = None,
    ) -> None:
        super().__init__(modality)
        timm = require("timm", package="timm")
        from modalforge_timm.encoder import check_model_name
        from modalforge_timm.weights import check_weights_file

        field = f"model.encoders.{modality.name}.params"
        check_model_name(timm, model_name, f"{field}.model_name")
        if pool not in ("spatial_softmax", "avg"):
            raise SpecError(f"{field}.pool", f"must be spatial_softmax or avg, got {pool!r}")
        if weights_file is not None:
            check_weights_file(weights_file, f"{field}.weights_file")
        self.condition_on = tuple([condition_on] if isinstance(condition_on, str) else condition_on)
        if self.condition_on and not condition_dim:
            raise ValueError(f"condition_on {list(self.condition_on)} needs a condition_dim")
        kwargs: dict[str, Any] = {
            "features_only": True,
            "pretrained": weights_file is not None,
            "in_chans": int(modality.channels or 3),
        }
        if weights_file is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(weights_file)}
        try:
            self.trunk = timm.create_model(model_name, **kwargs)
        except RuntimeError as exc:  # a state dict of another architecture
            raise CheckpointError(
                f"{weights_file}: does not fit timm model {model_name!r}: {exc}",
                hint=f"give {field}.weights_file saved from {model_name}, or change model_name",
            ) from None
        channels = list(self.trunk.feature_info.channels())
        n = len(channels)
        if not -n <= out_index < n:
            raise SpecError(
                f"{field}.out_index", f"{model_name} has {n} feature stages, got {out_index}"
            )
        self.out_index = out_index % n
        if self.out_index < n - 1:  # build only the stages that run
            kwargs["out_indices"] = tuple(range(self.out_index + 1))
            self.trunk = timm.create_model(model_name, **kwargs)
        stages = list(range(self.out_index + 1)) if film_stages is None else list(film_stages)
        bad = [s for s in stages if not 0 <= s <= self.out_index]
        if bad:
            raise SpecError(
                f"{field}.film_stages",
                f"stage {bad[0]} is not one of the stages run (0..{self.out_index})",
            )
        self.film_stages = stages if self.condition_on else []
        self.films = nn.ModuleDict(
            {str(s): FiLM(int(condition_dim), channels[s]) for s in self.film_stages}
        )
        self._condition: Tensor | None = None
        names = self.trunk.feature_info.module_name()
        modules = dict(self.trunk.named_modules())
        for stage in self.film_stages:
            modules[names[stage]].register_forward_hook(self._modulate(stage))
        self.freeze = bool(freeze)
        if self.freeze:
            self.trunk.requires_grad_(False)
            self.trunk.eval()
        width = channels[self.out_index]
        self.pool, self.proj, self.tokens, dim = map_readout(
            width, pool, num_keypoints, out_dim, tokens
        )
        self._output = FeatureSpec(dim, tokens=bool(tokens))

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def train(self, mode: bool = True) -> TimmVisualEncoder:
        """A frozen backbone stays in eval mode (its batch-norm statistics do not move)."""
        super().train(mode)
        if self.freeze:
            self.trunk.eval()
        return self

    def _modulate(self, stage: int):  # noqa: ANN202 - a forward hook
        def hook(module: nn.Module, args: Any, output: Tensor) -> Tensor:  # noqa: ANN401
            assert self._condition is not None
            return self.films[str(stage)](output, self._condition)

        return hook

    def feature_map(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The ``out_index`` stage's maps ``(B, C, h, w)``, FiLM-modulated along the way."""
        if self.condition_on and condition is None:
            raise ValueError(
                f"this visual encoder is conditioned on {list(self.condition_on)}; call it with "
                "their features (the model does)"
            )
        self._condition = condition
        try:
            maps = self.trunk(x.float())
        finally:
            self._condition = None
        return maps[self.out_index]

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.proj(self.pool(self.feature_map(x, condition)))

    def forward_tokens(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The maps as ``(B, h·w, dim)`` position-tagged tokens (``tokens: true``), for token
        fusions such as ``token_learner``."""
        if self.tokens is None:
            raise NotImplementedError("token output needs tokens: true")
        return self.tokens(self.feature_map(x, condition))
