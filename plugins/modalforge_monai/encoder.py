"""``monai_net``: a MONAI DenseNet or ResNet without its classifier, as a pooled encoder."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.deps import require
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind

NetworkName = Literal[
    "densenet121", "densenet169", "densenet201", "resnet10", "resnet18", "resnet34", "resnet50"
]
NETWORKS: tuple[str, ...] = NetworkName.__args__  # type: ignore[attr-defined]


class MonaiNetEncoder(Encoder):
    """A ``monai.networks.nets`` network for images or volumes, giving its pooled features.

    ``spatial_dims`` and input channels come from the modality. ``pretrained=False`` is always
    passed: several MONAI networks default to downloading weights. MONAI ``MetaTensor`` inputs are
    converted to plain tensors so the result works with ``torch.compile`` and other plugins.
    """

    accepts = (ModalityKind.VOLUME3D, ModalityKind.IMAGE2D, ModalityKind.DEPTH)

    def __init__(
        self,
        modality: Modality,
        network: NetworkName = "resnet18",
        out_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(modality)
        nets = require("monai.networks.nets", package="monai")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.network = network
        self.net, dim = build_network(
            nets, network, modality.spatial_dims, int(modality.channels or 1)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj: nn.Module = nn.Identity()
        if out_dim is not None:
            if out_dim <= 0:
                raise SpecError(
                    f"model.encoders.{modality.name}.params.out_dim",
                    f"must be positive, got {out_dim}",
                )
            self.proj = nn.Linear(dim, out_dim)
        self._output = FeatureSpec(out_dim or dim)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def forward(self, x: Tensor) -> Tensor:
        if hasattr(x, "as_tensor"):  # monai.data.MetaTensor → torch.Tensor
            x = x.as_tensor()
        features = self.net(x.float())
        return self.proj(self.dropout(features))


def build_network(
    nets: Any, network: str, spatial_dims: int, in_channels: int
) -> tuple[nn.Module, int]:
    """The MONAI network without its classification layer, and its pooled feature width."""
    if network.startswith("densenet"):
        cls = {
            "densenet121": nets.DenseNet121,
            "densenet169": nets.DenseNet169,
            "densenet201": nets.DenseNet201,
        }[network]
        net = cls(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=1, pretrained=False
        )
        dim = net.class_layers.out.in_features
        net.class_layers.out = nn.Identity()
        return net, int(dim)
    factory = getattr(nets, network)
    net = factory(
        pretrained=False,
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        feed_forward=False,
    )
    return net, int(net.in_planes)
