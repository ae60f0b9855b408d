"""Text-to-image generation apps: independent judges that score generated images."""

from modalforge_apps.generation.judges import DigitsJudge, KidFeatures, ShapesJudge

__all__ = ["DigitsJudge", "KidFeatures", "ShapesJudge"]
