"""modalforge: a plugin-based multimodal framework on PyTorch.

The public API is re-exported here and imported lazily, so ``import modalforge`` stays fast and
never pulls in timm, transformers or monai.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # modalities and contracts
    "Modality": "modalforge.modality",
    "ModalityKind": "modalforge.modality",
    "FeatureSpec": "modalforge.contracts",
    "Encoder": "modalforge.contracts",
    "Fusion": "modalforge.contracts",
    "Head": "modalforge.contracts",
    "Loss": "modalforge.contracts",
    "LossOutput": "modalforge.contracts",
    "Metric": "modalforge.contracts",
    "DatasetReader": "modalforge.contracts",
    "Target": "modalforge.contracts",
    "TargetKind": "modalforge.contracts",
    "Generator": "modalforge.contracts",
    "CustomTrainStep": "modalforge.contracts",
    "Reranker": "modalforge.contracts",
    "Reranked": "modalforge.contracts",
    "DomainAdapter": "modalforge.contracts",
    "Transform": "modalforge.contracts",
    "ColumnLoader": "modalforge.contracts",
    "ManifestTable": "modalforge.data.table",
    "Optimizer": "modalforge.contracts",
    "Scheduler": "modalforge.contracts",
    "Callback": "modalforge.contracts",
    "RunLogger": "modalforge.contracts",
    "RunContext": "modalforge.engine.run",
    # plugins and registry
    "hookimpl": "modalforge.plugin",
    "get_registry": "modalforge.plugin",
    "load_plugins": "modalforge.plugin",
    "Registry": "modalforge.registry",
    "Registrar": "modalforge.registry",
    "ComponentInfo": "modalforge.registry",
    # specs, pipelines, engine
    "PipelineSpec": "modalforge.spec",
    "load_spec": "modalforge.spec",
    "build_pipeline": "modalforge.pipeline",
    "Pipeline": "modalforge.pipeline",
    "MultimodalModel": "modalforge.pipeline",
    "ContrastiveModel": "modalforge.pipeline",
    "TrainedPipeline": "modalforge.pipeline",
    "load_trained": "modalforge.pipeline",
    "TrainConfig": "modalforge.engine.config",
    "Trainer": "modalforge.engine",
    "train": "modalforge.engine",
    "evaluate": "modalforge.engine",
    # errors
    "ModalforgeError": "modalforge.errors",
    "SpecError": "modalforge.errors",
    "DataError": "modalforge.errors",
    "CheckpointError": "modalforge.errors",
    "PluginError": "modalforge.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from modalforge.contracts import (
        Callback,
        ColumnLoader,
        CustomTrainStep,
        DatasetReader,
        DomainAdapter,
        Encoder,
        FeatureSpec,
        Fusion,
        Generator,
        Head,
        Loss,
        LossOutput,
        Metric,
        Optimizer,
        Reranked,
        Reranker,
        RunLogger,
        Scheduler,
        Target,
        TargetKind,
        Transform,
    )
    from modalforge.data.table import ManifestTable
    from modalforge.engine import Trainer, evaluate, train
    from modalforge.engine.config import TrainConfig
    from modalforge.engine.run import RunContext
    from modalforge.errors import (
        CheckpointError,
        DataError,
        ModalforgeError,
        PluginError,
        SpecError,
    )
    from modalforge.modality import Modality, ModalityKind
    from modalforge.pipeline import (
        ContrastiveModel,
        MultimodalModel,
        Pipeline,
        TrainedPipeline,
        build_pipeline,
        load_trained,
    )
    from modalforge.plugin import get_registry, hookimpl, load_plugins
    from modalforge.registry import ComponentInfo, Registrar, Registry
    from modalforge.spec import PipelineSpec, load_spec
