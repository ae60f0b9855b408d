"""What every MONAI encoder shares: input conversion, the optional projection, local weights."""

from __future__ import annotations

from torch import Tensor, nn

from modalforge.contracts import Encoder
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge_monai.weights import load_encoder_weights


def as_plain(x: Tensor) -> Tensor:
    """A MONAI ``MetaTensor`` as a plain ``float32`` ``torch.Tensor`` (so ``torch.compile``, timm
    and the other plugins see an ordinary tensor; autocast still casts inside the layers)."""
    if hasattr(x, "as_tensor"):  # monai.data.MetaTensor → torch.Tensor
        x = x.as_tensor()
    return x.float()


class MonaiEncoder(Encoder):
    """Base of ``monai_net``, ``monai_vit`` and ``monai_swin``: 2-D images and 3-D volumes.

    Subclasses build ``self.net`` and call :meth:`_finish` with its feature width; it adds the
    dropout and ``out_dim`` projection and loads local ``weights``.
    """

    accepts = (ModalityKind.VOLUME3D, ModalityKind.IMAGE2D, ModalityKind.DEPTH)
    #: key prefixes of the full MONAI network's classifier, dropped from loaded weights
    classifier_keys: tuple[str, ...] = ()
    #: the sub-network prefix whose tensors are selected from a larger model's weights
    subnet_keys: tuple[str, ...] = ()
    what = "MONAI network"

    def __init__(self, modality: Modality) -> None:
        super().__init__(modality)
        self.field = f"model.encoders.{modality.name}.params"

    def _finish(self, dim: int, *, out_dim: int | None, dropout: float, weights: str | None) -> int:
        """Add dropout and the projection after ``self.net``, load ``weights``; the output
        width."""
        if not 0.0 <= dropout < 1.0:
            raise SpecError(f"{self.field}.dropout", f"must be in [0, 1), got {dropout}")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj: nn.Module = nn.Identity()
        if out_dim is not None:
            if out_dim <= 0:
                raise SpecError(f"{self.field}.out_dim", f"must be positive, got {out_dim}")
            self.proj = nn.Linear(dim, out_dim)
        if weights is not None:
            load_encoder_weights(
                self.net,
                self.proj,
                weights,
                f"{self.field}.weights",
                what=self.what,
                select=self.subnet_keys,
                drop=self.classifier_keys,
            )
        return out_dim or dim

    def spatial_size(self) -> tuple[int, ...]:
        """The modality's spatial axes; a :class:`SpecError` if one is variable (``None``)."""
        size = self.modality.shape[1:]
        if any(d is None for d in size):
            raise SpecError(
                f"model.encoders.{self.modality.name}",
                f"{type(self).__name__} needs a fixed spatial size, but modality "
                f"{self.modality.describe()} has a variable axis",
                hint="resize or crop the data to a fixed size (e.g. a resize transform)",
            )
        return tuple(int(d) for d in size)  # type: ignore[arg-type]
