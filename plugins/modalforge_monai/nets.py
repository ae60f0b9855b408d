"""``monai_net``: a MONAI DenseNet, ResNet or EfficientNet-BN without its classifier, pooled."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from modalforge.contracts import FeatureSpec
from modalforge.deps import require
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_monai.base import MonaiEncoder, as_plain

NetworkName = Literal[
    "densenet121",
    "densenet169",
    "densenet201",
    "densenet264",
    "resnet10",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet200",
    "efficientnet-b0",
    "efficientnet-b1",
    "efficientnet-b2",
    "efficientnet-b3",
    "efficientnet-b4",
    "efficientnet-b5",
    "efficientnet-b6",
    "efficientnet-b7",
]
NETWORKS: tuple[str, ...] = NetworkName.__args__  # type: ignore[attr-defined]
DENSENETS = {
    "densenet121": "DenseNet121",
    "densenet169": "DenseNet169",
    "densenet201": "DenseNet201",
    "densenet264": "DenseNet264",
}
#: the smallest spatial size DenseNet (5 poolings) and EfficientNet (static "same" padding for
#: 5 stride-2 stages) accept; ResNets take any size
MIN_SIZE = 32


class MonaiNetEncoder(MonaiEncoder):
    """A MONAI DenseNet, ResNet or EfficientNet-BN for images or volumes: its pooled features.

    ``network``: ``densenet121/169/201/264`` (``DenseNet``; features 1024, 1664, 1920, 2688),
    ``resnet10/18/34`` (512), ``resnet50/101/152/200`` (2048), ``efficientnet-b0`` … ``-b7``
    (``EfficientNetBN``; 1280 … 2560). ``spatial_dims`` (2 or 3) and input channels come from the
    modality; DenseNets and EfficientNets need every spatial axis ≥ 32. The classifier is
    removed: DenseNet's ``class_layers.out``, ResNet's ``fc``, EfficientNet's ``_fc`` and the
    dropout before it (``dropout`` here replaces it). Every network is built with
    ``pretrained=False``: several MONAI networks default to downloading weights; ``weights``
    loads a local state dict, safetensors file or MONAI bundle folder instead (see
    :mod:`modalforge_monai.weights`). An optional ``out_dim`` projection follows.
    """

    classifier_keys = ("class_layers.out.", "fc.", "_fc.")

    def __init__(
        self,
        modality: Modality,
        network: NetworkName = "resnet18",
        out_dim: int | None = None,
        dropout: float = 0.0,
        weights: str | None = None,
    ) -> None:
        super().__init__(modality)
        nets = require("monai.networks.nets", package="monai")
        self.network = network
        check_min_size(modality, network)
        self.what = f"MONAI {network} ({modality.spatial_dims}-D)"
        self.net, dim = build_network(
            nets, network, modality.spatial_dims, int(modality.channels or 1)
        )
        self._output = FeatureSpec(
            self._finish(dim, out_dim=out_dim, dropout=dropout, weights=weights)
        )

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.dropout(self.net(as_plain(x))))


def check_min_size(modality: Modality, network: str) -> None:
    """A :class:`SpecError` if a DenseNet or EfficientNet would pool a spatial axis to nothing."""
    if network.startswith("resnet"):
        return
    small = [d for d in modality.shape[1:] if d is not None and d < MIN_SIZE]
    if small:
        raise SpecError(
            f"model.encoders.{modality.name}",
            f"monai_net {network} needs every spatial axis to be at least {MIN_SIZE}, but "
            f"modality {modality.describe()} has {', '.join(map(str, small))}",
            hint=f"resize or pad the data to {MIN_SIZE} or more, or choose a resnet network",
        )


def build_network(
    nets: Any, network: str, spatial_dims: int, in_channels: int
) -> tuple[nn.Module, int]:
    """The MONAI network without its classification layer, and its pooled feature width."""
    if network in DENSENETS:
        net = getattr(nets, DENSENETS[network])(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=1, pretrained=False
        )
        dim = net.class_layers.out.in_features
        net.class_layers.out = nn.Identity()
        return net, int(dim)
    if network.startswith("efficientnet-"):
        net = nets.EfficientNetBN(
            network,
            pretrained=False,
            progress=False,
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=1,
        )
        dim = net._fc.in_features
        net._dropout = nn.Identity()
        net._fc = nn.Identity()
        return net, int(dim)
    factory = getattr(nets, network)
    net = factory(
        pretrained=False,
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        feed_forward=False,
    )
    return net, int(net.in_planes)
