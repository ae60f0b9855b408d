"""The ``robotics`` domain adapter: what ``domain: robotics`` gives a spec, and the catalogue
``modalforge components adapter robotics`` shows.

Defaults follow the observation features the spec's episode data declares (LeRobot style:
each camera ``image_<cam>``, each depth map ``depth_<cam>``, the ``state`` vector, the
``instruction``; see :mod:`~modalforge_robotics.data.features`): each camera and depth map gets
a visual trunk FiLM-conditioned on the instruction (RT-1 style) and pooled to spatial-softmax
keypoints, the state an MLP over training-split standardised values, the instruction a small
byte-level text transformer; features are concatenated and an action head predicts the action
chunk, trained with the head's own loss. Every default is overridable in the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from modalforge.contracts import DomainAdapter
from modalforge.contracts.adapter import spec_dataset
from modalforge.modality import Modality, ModalityKind
from modalforge_robotics.data.features import observation_features

Language = Literal["film", "concat", "none"]

HEAD_LOSSES: dict[str, str] = {
    "mse_action": "action_mse",
    "gmm_action": "action_gmm_nll",
    "binned_action": "action_bins_ce",
    "diffusion_action": "action_diffusion",
}
EPISODE_READERS = ("robomimic", "lerobot", "demonstrations")


class RoboticsDomain(DomainAdapter):
    """Robotics perception: cameras, depth, proprioception and language → actions.

    ``language``: ``film`` (the instruction modulates every visual stage and joins the fused
    features), ``concat`` (it only joins the fused features) or ``none`` (no instruction
    encoder: a language-blind baseline). ``head`` is the default action head (its loss follows
    it, also when the spec names the head itself); ``widths`` and ``num_keypoints`` size the
    visual trunks; ``text_context`` is the instruction's length in bytes.
    """

    def __init__(
        self,
        language: Language = "film",
        head: str = "mse_action",
        widths: list[int] = [32, 32, 64],  # noqa: B006 - read-only default, copied below
        num_keypoints: int = 32,
        text_context: int = 64,
    ) -> None:
        if language not in ("film", "concat", "none"):
            raise ValueError(f"language must be film, concat or none, got {language!r}")
        if head not in HEAD_LOSSES:
            raise ValueError(f"head must be one of {', '.join(HEAD_LOSSES)}, got {head!r}")
        if text_context < 8:
            raise ValueError(f"text_context must be at least 8 bytes, got {text_context}")
        self.language = language
        self.head = head
        self.widths = list(widths)
        self.num_keypoints = int(num_keypoints)
        self.text_context = int(text_context)

    def describe(self) -> str:
        return (
            "Robotics perception: episodes from robomimic HDF5 files or LeRobot folders (or "
            "scripted-expert demonstrations of the built-in tabletop and MuJoCo Reacher), "
            "camera/depth/proprioception/language encoders with FiLM conditioning, action "
            "heads (MSE, Gaussian mixture, bins, diffusion) over action chunks, and closed-loop "
            "evaluation with `modalforge rollout` (success rate with a Wilson/Beta interval)."
        )

    # ------------------------------------------------------------------ catalogue
    @property
    def modalities(self) -> dict[str, Modality]:
        return {
            "image_front": Modality("image_front", ModalityKind.IMAGE2D, (3, None, None)),
            "depth_front": Modality("depth_front", ModalityKind.DEPTH, (1, None, None)),
            "state": Modality("state", ModalityKind.LOWDIM, (None,)),
            "instruction": Modality("instruction", ModalityKind.TEXT, (None,), dtype="str"),
            "action": Modality("action", ModalityKind.ACTION, (None, None)),
        }

    @property
    def readers(self) -> tuple[str, ...]:
        return EPISODE_READERS

    @property
    def transforms(self) -> tuple[str, ...]:
        return ("standardize",)

    @property
    def recommended(self) -> dict[str, str]:
        return {
            "encoder.image": "visual",
            "encoder.image_pretrained": "timm_visual",
            "encoder.depth": "visual",
            "encoder.state": "mlp",
            "encoder.instruction": "clip_text",
            "encoder.instruction_pretrained": "hf_text",
            "fusion": "concat",
            "fusion.tokens": "token_learner",
            "head": "mse_action",
            "head.multimodal": "gmm_action",
            "head.discrete": "binned_action",
            "head.diffusion": "diffusion_action",
            "loss": "action_mse",
        }

    # ------------------------------------------------------------------ defaults
    def preset(self) -> dict[str, Any]:
        """The defaults of a spec whose data has one camera, depth, state and an instruction
        (what ``modalforge components adapter robotics`` shows)."""
        kinds = {
            name: m.kind for name, m in self.modalities.items() if m.kind != ModalityKind.ACTION
        }
        return self._defaults(kinds, {})

    def preset_for(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        dataset = spec_dataset(spec)
        params = dataset.get("params") or {}
        name = dataset.get("name")
        if name not in EPISODE_READERS or not isinstance(params, Mapping):
            return self._defaults({}, spec)
        return self._defaults(observation_features(str(name), params), spec)

    def _defaults(self, kinds: Mapping[str, ModalityKind], spec: Mapping[str, Any]) -> dict:
        language = self.language if "instruction" in kinds else "none"
        film = ["instruction"] if language == "film" else []
        encoders: dict[str, Any] = {}
        eval_steps: dict[str, list[Any]] = {}
        for name, kind in kinds.items():
            if kind in (ModalityKind.IMAGE2D, ModalityKind.DEPTH):
                visual: dict[str, Any] = {
                    "widths": list(self.widths),
                    "num_keypoints": self.num_keypoints,
                }
                if film:
                    visual["condition_on"] = list(film)
                encoders[name] = {"name": "visual", "params": visual}
            elif kind == ModalityKind.LOWDIM:
                encoders[name] = {"name": "mlp", "params": {"hidden_dims": [64], "out_dim": 64}}
                eval_steps[name] = ["standardize"]
            elif kind == ModalityKind.TEXT and language != "none":
                encoders[name] = {
                    "name": "clip_text",
                    "params": {
                        "context_length": self.text_context,
                        "vocab_size": 260,
                        "width": 64,
                        "heads": 4,
                        "layers": 1,
                        "embed_dim": 64,
                    },
                }
        head = _spec_head(spec) or self.head
        model: dict[str, Any] = {"encoders": encoders, "fusion": "concat"}
        if head == self.head:
            model["head"] = {"name": head, "params": {"hidden_dims": [256]}}
        out: dict[str, Any] = {
            "model": model,
            "loss": HEAD_LOSSES.get(head, "action_mse"),
            "train": {"lr": 1e-3, "weight_decay": 1e-4, "warmup_steps": 20},
        }
        if eval_steps:
            out["data"] = {"transforms": {"eval": eval_steps}}
        return out


def _spec_head(spec: Mapping[str, Any]) -> str | None:
    """The head the spec names itself, so the default loss can follow it."""
    model = spec.get("model") if isinstance(spec, Mapping) else None
    head = model.get("head") if isinstance(model, Mapping) else None
    if isinstance(head, str):
        return head
    if isinstance(head, Mapping) and isinstance(head.get("name"), str):
        return head["name"]
    return None
