"""Action heads of the robotics domain and their losses, plus run-time temporal ensembling.

Every head is an :class:`ActionHead`: sized from the data set's ``(k, A)`` action-chunk target,
with ``act(outputs)`` giving the normalised chunk ``(B, k, A)`` a rollout executes.

================ ================== ===================================================
head             loss               predicts
================ ================== ===================================================
mse_action       action_mse         the chunk itself (MSE / L1 / smooth-L1)
gmm_action       action_gmm_nll     a mixture of Gaussians per step (robomimic's GMM)
binned_action    action_bins_ce     one of ``bins`` uniform bins per dimension and step
diffusion_action action_diffusion   Diffusion Policy: a denoiser run by DDIM (the loss
                                    needs ``loss.bind_model(model)``, see ``.diffusion``)
================ ================== ===================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge_robotics.heads.base import ACTION_PAD_KEY, ActionHead, ActionLoss
from modalforge_robotics.heads.binned import ActionBinsCELoss, BinnedActionHead
from modalforge_robotics.heads.diffusion import ActionDiffusionLoss, DiffusionActionHead
from modalforge_robotics.heads.ensembling import TemporalEnsembler
from modalforge_robotics.heads.gmm import ActionGMMNLLLoss, GMMActionHead
from modalforge_robotics.heads.regression import ActionMSELoss, MLPActionHead

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "ACTION_PAD_KEY",
    "ActionBinsCELoss",
    "ActionDiffusionLoss",
    "ActionGMMNLLLoss",
    "ActionHead",
    "ActionLoss",
    "ActionMSELoss",
    "BinnedActionHead",
    "DiffusionActionHead",
    "GMMActionHead",
    "MLPActionHead",
    "TemporalEnsembler",
    "register",
]


def register(registry: Registrar) -> None:
    """Register the action heads and their losses."""
    registry.head("mse_action", MLPActionHead, tags=("action", "regression", "robotics"))
    registry.head("gmm_action", GMMActionHead, tags=("action", "gmm", "robotics"))
    registry.head("binned_action", BinnedActionHead, tags=("action", "discrete", "robotics"))
    registry.head("diffusion_action", DiffusionActionHead, tags=("action", "diffusion", "robotics"))
    registry.loss("action_mse", ActionMSELoss, tags=("action", "regression", "robotics"))
    registry.loss("action_gmm_nll", ActionGMMNLLLoss, tags=("action", "gmm", "robotics"))
    registry.loss("action_bins_ce", ActionBinsCELoss, tags=("action", "discrete", "robotics"))
    registry.loss("action_diffusion", ActionDiffusionLoss, tags=("action", "diffusion", "robotics"))
