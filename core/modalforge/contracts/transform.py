"""Transform contract: one step of a modality's per-sample preprocessing or augmentation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

from modalforge.errors import DataError
from modalforge.modality import Modality, ModalityKind


class Transform(ABC):
    """Maps one sample of one modality to a new sample (a PIL image, a tensor, a caption).

    Transforms are named in a spec under ``data.transforms.<phase>.<modality>`` and built with
    the :class:`Modality` they receive (the data set's, or the previous step's output), so they
    size themselves (e.g. a random crop defaults to the modality's height and width).

    - ``accepts``: the modality kinds the transform works on (empty: any); checked by the
      pipeline before it builds the transform.
    - ``raw``: ``True`` if it needs raw samples (PIL images, strings), ``False`` if it needs
      tensors, ``None`` if it takes both. The pipeline checks this against the modality.
    - ``fitted``: the transform learns statistics from the training split (:meth:`fit`) that are
      stored with every checkpoint (:meth:`state_dict` / :meth:`load_state_dict`, plain JSON).
    - :meth:`output` describes what comes out (a shape change, e.g. missing-value indicators).

    Random transforms draw from ``torch``'s generator, which the engine seeds per data-loader
    worker, so augmentation is reproducible for a given seed.
    """

    accepts: ClassVar[tuple[ModalityKind, ...]] = ()
    raw: ClassVar[bool | None] = None
    fitted: ClassVar[bool] = False
    random: ClassVar[bool] = False

    def __init__(self, modality: Modality) -> None:
        self.modality = modality
        self._fitted = False

    def output(self) -> Modality:
        """The modality this transform produces (by default the one it reads)."""
        return self.modality

    @abstractmethod
    def __call__(self, sample: Any) -> Any:  # noqa: ANN401 - samples are any modality's
        """One sample in, one sample out."""

    # ---------------------------------------------------------------- fitted transforms
    def fit(self, samples: Iterable[Any]) -> None:  # noqa: B027 - only fitted transforms fit
        """Learn statistics from the training split's samples (each already through the steps
        before this one)."""

    def state_dict(self) -> dict[str, Any]:
        """What :meth:`fit` learned, as JSON-serialisable values."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` returned (from a checkpoint)."""

    @property
    def is_fitted(self) -> bool:
        return not self.fitted or self._fitted

    def require_fitted(self) -> None:
        """Raise a :class:`DataError` if a fitted transform is used before fitting."""
        if not self.is_fitted:
            raise DataError(
                f"transform {type(self).__name__} of modality {self.modality.name!r} has not been "
                "fitted to the training data",
                hint="train the pipeline (which fits it) or load a checkpoint that stores it",
            )
