"""Saliency maps for a classifier's prediction with respect to one spatial input modality.

Two methods, both through MONAI's visualizers (imported when called, never at import):

- ``gradcam``: :class:`monai.visualize.GradCAM` on a target layer of the modality's encoder. By
  default the layer is the encoder's last module that outputs a spatial feature map (the output
  of its last convolutional stage, after normalisation and activation); ``layer`` names another.
- ``occlusion``: :class:`monai.visualize.OcclusionSensitivity`, batched sliding-window occlusion;
  the map is how much the explained class's probability drops when the region around each
  position is occluded.

The other modalities of a multimodal sample stay fixed: :class:`ModalityLogits` wraps the
pipeline's model as a module taking one tensor (the explained modality) and returning logits,
which is the interface MONAI's visualizers expect. Maps are non-negative, scaled to ``[0, 1]``
(0 everywhere when no region supports the class), and have the input's spatial shape.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import MASKS_KEY, TargetKind
from modalforge.errors import ModalforgeError, SpecError

Method = Literal["gradcam", "occlusion"]
METHODS: tuple[str, ...] = ("gradcam", "occlusion")


class ModalityLogits(nn.Module):
    """``model`` with every input but ``modality`` held fixed: ``forward(x) → logits (B, K)``.

    ``fixed`` is a batch of one sample (the other modalities, their presence masks); it is
    repeated to the batch size of ``x``, so occlusion can run many occluded copies at once.
    """

    def __init__(
        self, model: nn.Module, modality: str, fixed: Mapping[str, Any], output_key: str
    ) -> None:
        super().__init__()
        self.model = model
        self.modality = modality
        self.fixed = {k: v for k, v in fixed.items() if k != modality}
        self.output_key = output_key

    def forward(self, x: Tensor) -> Tensor:
        batch = {k: _repeat(v, x.shape[0]) for k, v in self.fixed.items()}
        batch[self.modality] = x
        return self.model(batch)[self.output_key].float()


def _repeat(value: Any, n: int) -> Any:
    if isinstance(value, Tensor):
        return value.expand(n, *value.shape[1:]) if value.shape[:1] == (1,) else value
    if isinstance(value, Mapping):
        return {k: _repeat(v, n) for k, v in value.items()}
    return value


@dataclass
class Explanation:
    """One sample's saliency map and the prediction it explains."""

    modality: str
    method: str
    class_index: int  # the explained class
    probabilities: Tensor  # (K,): softmax (multiclass) or sigmoid (multilabel)
    saliency: Tensor  # (*spatial) in [0, 1], CPU float32
    image: Tensor  # (C, *spatial): the input as the model saw it, CPU float32
    layer: str | None = None  # Grad-CAM's target layer, relative to the encoder
    raw_max: float = 0.0  # the map's maximum before scaling (logit units or probability drop)

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def probability(self) -> float:
        """The explained class's probability."""
        return float(self.probabilities[self.class_index])


def classifier_parts(model: nn.Module, target_kind: TargetKind | None) -> str:
    """The model's logits key, if it is an encoders → head classifier; else a :class:`SpecError`."""
    head = getattr(model, "head", None)
    if getattr(model, "encoders", None) is None or head is None:
        raise SpecError(
            "model",
            f"saliency maps explain a classifier, and this spec builds a {type(model).__name__}",
            hint="use a supervised spec (encoders → fusion → classification head)",
        )
    if target_kind not in (TargetKind.MULTICLASS, TargetKind.MULTILABEL):
        raise SpecError(
            "model.head",
            f"saliency maps explain class predictions, and this pipeline's target is "
            f"{target_kind or 'missing'}",
            hint="use a spec with a multiclass or multilabel target and a classification head",
        )
    return str(head.output_key)


def spatial_modalities(model: nn.Module, modalities: Mapping[str, Any]) -> list[str]:
    """The model's input modalities with 2 or 3 spatial axes (images, depth maps, volumes)."""
    return [m for m in model.encoders if modalities[m].spatial_dims in (2, 3)]


def pick_modality(model: nn.Module, modalities: Mapping[str, Any], modality: str | None) -> str:
    """``modality`` if the model reads it and it is spatial; by default the only spatial one."""
    spatial = spatial_modalities(model, modalities)
    shown = ", ".join(spatial) or "none"
    if modality is None:
        if len(spatial) != 1:
            raise ModalforgeError(
                f"the model has {len(spatial)} spatial modalities ({shown}); say which to explain",
                hint="pass --modality NAME",
            )
        return spatial[0]
    if modality not in model.encoders:
        raise ModalforgeError(
            f"--modality: the model has no input {modality!r}",
            hint=f"spatial modalities it reads: {shown}",
        )
    if modality not in spatial:
        kind = modalities[modality].kind
        raise ModalforgeError(
            f"--modality: {modality!r} is {kind}, not an image or volume: it has no saliency map",
            hint=f"choose a spatial modality: {shown}",
        )
    return modality


def class_index(class_names: Sequence[str], name: str) -> int:
    """The index of class ``name`` (a class name, or an index when the classes have no names)."""
    if name in class_names:
        return list(class_names).index(name)
    raise ModalforgeError(
        f"--class: the model has no class {name!r}",
        hint=f"choose one of: {', '.join(class_names) or '(the data set names no classes)'}",
    )


def feature_map_layers(wrapper: ModalityLogits, x: Tensor) -> list[str]:
    """Names (relative to the encoder) of the encoder's modules whose output is a spatial map
    ``(B, C, *spatial)`` larger than one position, run once per forward, in the order they finish.

    These are the layers Grad-CAM can use; the last one is the default.
    """
    encoder = wrapper.model.encoders[wrapper.modality]
    finished: list[str] = []
    calls: dict[str, int] = {}
    handles = []

    def hook(name: str):  # noqa: ANN202
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            spatial = isinstance(output, Tensor) and output.ndim == x.ndim
            if spatial and any(s > 1 for s in output.shape[2:]):
                finished.append(name)

        return record

    for name, module in encoder.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            wrapper(x)
    finally:
        for h in handles:
            h.remove()
    return [n for n in finished if calls[n] == 1]


def resolve_layer(wrapper: ModalityLogits, x: Tensor, layer: str | None) -> str:
    """``layer`` (relative to the encoder) if Grad-CAM can use it, else the default one."""
    candidates = feature_map_layers(wrapper, x)
    where = (
        f"encoder {wrapper.modality!r} ({type(wrapper.model.encoders[wrapper.modality]).__name__})"
    )
    if not candidates:
        raise ModalforgeError(
            f"{where} has no layer with a spatial feature map, so Grad-CAM cannot explain it",
            hint="use --method occlusion",
        )
    if layer is None:
        return candidates[-1]
    if layer not in candidates:
        raise ModalforgeError(
            f"--layer: {where} has no layer {layer!r} with a spatial feature map",
            hint=f"choose one of (last is the default): {', '.join(candidates)}",
        )
    return layer


@contextlib.contextmanager
def _no_inplace(module: nn.Module) -> Iterator[None]:
    """Turn off ``inplace`` activations while hooks run: an in-place op on the output of a
    module with a backward hook is an autograd error."""
    changed = [m for m in module.modules() if getattr(m, "inplace", False) is True]
    for m in changed:
        m.inplace = False
    try:
        yield
    finally:
        for m in changed:
            m.inplace = True


def _scale(saliency: Tensor) -> tuple[Tensor, float]:
    saliency = saliency.detach().float().clamp(min=0).cpu()
    top = float(saliency.max()) if saliency.numel() else 0.0
    return (saliency / top if top > 0 else torch.zeros_like(saliency)), top


def _probabilities(logits: Tensor, kind: TargetKind) -> Tensor:
    return logits.sigmoid() if kind == TargetKind.MULTILABEL else logits.softmax(-1)


def gradcam_map(wrapper: ModalityLogits, x: Tensor, class_index: int, layer: str) -> Tensor:
    """Grad-CAM ``(*spatial)`` (ReLU of the gradient-weighted channel sum, upsampled linearly to
    the input size, unscaled) of class ``class_index`` at the encoder's ``layer``."""
    from monai.visualize import GradCAM

    target = f"model.encoders.{wrapper.modality}.{layer}"
    x = x.detach().clone().requires_grad_(True)  # so the full backward hooks see an input grad
    with _no_inplace(wrapper), torch.enable_grad():
        cam = GradCAM(nn_module=wrapper, target_layers=target, postprocessing=lambda m: m)
        out = cam(x, class_idx=class_index)
    return torch.as_tensor(out).detach()[0, 0]


def occlusion_map(
    wrapper: ModalityLogits,
    x: Tensor,
    class_index: int,
    kind: TargetKind,
    *,
    mask_size: int | Sequence[int] | None = None,
    n_batch: int = 16,
    overlap: float = 0.5,
    mode: str = "gaussian",
) -> Tensor:
    """Probability drop ``(*spatial)`` of class ``class_index`` when the region around each
    position is occluded (MONAI's sliding-window occlusion, ``n_batch`` copies per forward).

    ``mask_size`` defaults to a quarter of each spatial axis (odd, at least 3 or the axis).
    """
    from monai.visualize import OcclusionSensitivity

    spatial = x.shape[2:]
    if mask_size is None:
        mask_size = [min(s, max(3, s // 4) | 1) for s in spatial]
    sizes = [mask_size] * len(spatial) if isinstance(mask_size, int) else list(mask_size)
    if len(sizes) != len(spatial) or any(
        not 0 < m <= s for m, s in zip(sizes, spatial, strict=True)
    ):
        raise ModalforgeError(
            f"--mask-size {mask_size} does not fit the input's spatial size {tuple(spatial)}",
            hint="give a size between 1 and the smallest spatial axis",
        )
    occ = OcclusionSensitivity(
        nn_module=wrapper,
        mask_size=sizes,
        n_batch=n_batch,
        verbose=False,
        mode=mode,
        overlap=overlap,
        activate=lambda logits: _probabilities(logits, kind),
    )
    with torch.no_grad(), warnings.catch_warnings():
        # MONAI 1.6 indexes with lists inside the occlusion loop (a torch deprecation warning)
        warnings.filterwarnings("ignore", message=".*non-tuple sequence", category=UserWarning)
        base = _probabilities(wrapper(x), kind)[0, class_index]
        occluded, _ = occ(x)
    occluded = occluded.as_tensor() if hasattr(occluded, "as_tensor") else occluded
    return base - occluded[0, class_index]


def explain(
    model: nn.Module,
    batch: Mapping[str, Any],
    *,
    target_kind: TargetKind,
    modality: str,
    method: Method = "gradcam",
    class_index: int | None = None,
    layer: str | None = None,
    mask_size: int | Sequence[int] | None = None,
    n_batch: int = 16,
) -> Explanation:
    """Explain the prediction of ``model`` for a batch of ONE sample (tensors on the model's
    device) with respect to ``modality``; ``class_index`` defaults to the predicted class."""
    if method not in METHODS:
        raise ModalforgeError(f"--method: unknown method {method!r}", hint="gradcam or occlusion")
    output_key = classifier_parts(model, target_kind)
    inputs = {k: v for k, v in batch.items() if k in model.encoders or k == MASKS_KEY}
    wrapper = ModalityLogits(model, modality, inputs, output_key)
    x = batch[modality]
    x = (x.as_tensor() if hasattr(x, "as_tensor") else x).float()
    if x.shape[0] != 1:
        raise ValueError(f"explain takes a batch of one sample, got {x.shape[0]}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probs = _probabilities(wrapper(x), target_kind)[0].cpu()
        k = int(probs.argmax()) if class_index is None else class_index
        used_layer = None
        if method == "gradcam":
            used_layer = resolve_layer(wrapper, x, layer)
            raw = gradcam_map(wrapper, x, k, used_layer)
        else:
            raw = occlusion_map(wrapper, x, k, target_kind, mask_size=mask_size, n_batch=n_batch)
    finally:
        model.train(was_training)
    saliency, top = _scale(raw)
    return Explanation(modality, method, k, probs, saliency, x[0].detach().cpu(), used_layer, top)
