"""Synthetic studies: seeded, cached, and internally consistent (pixels, reports, labels)."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from modalforge_medical.synthetic import FINDINGS, StudyConfig, ensure_studies
from modalforge_medical.synthetic.anatomy import ORGAN, Lesions, LobeLesions, render
from modalforge_medical.synthetic.reports import FINDING_PROMPTS, write_report

SMALL = {"num_train": 60, "num_val": 10, "num_test": 30}


def _rows(manifest) -> list[dict[str, str]]:
    with open(manifest, encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    return ensure_studies(StudyConfig(dims=3, size=32, **SMALL), tmp_path_factory.mktemp("c"))


def test_generation_is_seeded_and_cached(tmp_path, volumes):
    again = ensure_studies(StudyConfig(dims=3, size=32, **SMALL), tmp_path)
    assert again != volumes and again.read_text() == volumes.read_text()
    first, second = _rows(volumes)[3], _rows(again)[3]
    a = nib.load(volumes.parent / first["image"]).get_fdata()
    b = nib.load(again.parent / second["image"]).get_fdata()
    np.testing.assert_array_equal(a, b)
    stamp = again.stat().st_mtime_ns
    assert ensure_studies(StudyConfig(dims=3, size=32, **SMALL), tmp_path) == again
    assert again.stat().st_mtime_ns == stamp  # reused, not rewritten
    other = ensure_studies(StudyConfig(dims=3, size=32, seed=1, **SMALL), tmp_path)
    assert other.parent != again.parent and other.read_text() != again.read_text()


def test_volumes_are_real_nifti_with_spacing(volumes):
    row = _rows(volumes)[0]
    image = nib.load(volumes.parent / row["image"])
    assert image.shape == (32, 32, 32) and image.get_data_dtype() == np.int16
    assert image.header.get_zooms() == (1.5, 1.5, 1.5)
    assert 0 <= image.get_fdata().min() and image.get_fdata().max() <= 1000


def test_splits_and_columns(volumes):
    rows = _rows(volumes)
    assert [r["split"] for r in rows].count("test") == 30 and len(rows) == 100
    assert {"image", "report", "age", "sex", "crp", "findings", "diagnosis"} <= set(rows[0])
    assert any(r["crp"] == "" for r in rows)  # some lab values are missing
    assert {r["diagnosis"] for r in rows} == {"benign", "malignant"}
    assert set("|".join(r["findings"] for r in rows).split("|")) - {""} == set(FINDINGS)


def test_lesions_show_in_their_lobe():
    rng = np.random.default_rng(0)
    none = Lesions(LobeLesions(0, False, False), LobeLesions(0, False, False))
    right = Lesions(LobeLesions(0, False, False), LobeLesions(2, True, True))
    clear, lesion = render(none, 32, 3, rng), render(right, 32, 3, rng)
    half = 16
    assert lesion[..., half:].max() > 0.85 and clear[..., half:].max() < ORGAN + 0.2
    assert lesion[..., :half].max() < ORGAN + 0.2  # the left lobe stays clear
    assert right.findings() == {
        "left_lesion": False,
        "right_lesion": True,
        "multiple_lesions": True,
        "large_lesion": True,
        "bright_lesion": True,
    }


def test_reports_state_findings_and_negate_only_absent_ones():
    rng = np.random.default_rng(0)
    lesions = Lesions(LobeLesions(1, False, True), LobeLesions(0, False, False))
    texts = set()
    for _ in range(40):
        report = write_report(lesions, rng, negate_prob=1.0)
        assert "left lobe" in report.text and report.negated == ("right_lesion",)
        assert any(p in report.text for p in ("bright", "hyperdense"))
        texts.add(report.text)
    assert len(texts) > 5  # paraphrases and sentence order vary
    never = write_report(lesions, rng, negate_prob=0.0)
    assert "right lobe" not in never.text and never.negated == ()
    assert set(FINDING_PROMPTS) == set(FINDINGS)


def _stated(prompt: str) -> tuple[int, set[str], set[str]]:
    """(lesions stated, sides with a lesion, size/intensity words) of a prompt in the report
    grammar; "multiple lesions." counts as two."""
    count, sides, words = 0, set(), set()
    for sentence in prompt.split(". "):
        tokens = sentence.rstrip(".").replace(":", "").split()
        if sentence.rstrip(".") in ("multiple lesions", "several lesions are seen"):
            count = max(count, 2)
            continue
        numbers = [t for t in tokens if t in ("a", "two", "three")]
        if "no" in tokens or "clear" in tokens or not numbers or "lobe" not in tokens:
            continue
        count += {"a": 1, "two": 2, "three": 3}[numbers[0]]
        sides |= {t for t in tokens if t in ("left", "right")}
        words |= {t for t in tokens if t in ("large", "big", "small", "tiny", "bright",
                                             "hyperdense", "faint", "subtle")}  # fmt: skip
    return count, sides, words


def test_finding_prompts_state_each_finding_and_its_absence():
    """Every prompt reads as a report of a study with (positive) or without (negative) the
    finding, and a side's ensemble leaves the other attributes balanced."""
    holds = {
        "left_lesion": lambda n, sides, words: "left" in sides,
        "right_lesion": lambda n, sides, words: "right" in sides,
        "multiple_lesions": lambda n, sides, words: n >= 2,
        "large_lesion": lambda n, sides, words: bool(words & {"large", "big"}),
        "bright_lesion": lambda n, sides, words: bool(words & {"bright", "hyperdense"}),
    }
    for finding, pair in FINDING_PROMPTS.items():
        assert len(set(pair["positive"])) == len(pair["positive"]) > 1
        for side, expected in (("positive", True), ("negative", False)):
            for prompt in pair[side]:
                assert holds[finding](*_stated(prompt)) is expected, (finding, side, prompt)
    left = FINDING_PROMPTS["left_lesion"]["positive"]
    assert {_stated(p)[0] for p in left} == {1, 2, 3}
    for word in ("large", "small", "bright", "faint"):
        assert sum(word in p for p in left) == len(left) // 4  # each of two words per class
    large = FINDING_PROMPTS["large_lesion"]
    assert sum("left" in p for p in large["positive"]) == len(large["positive"]) // 2


def test_diagnosis_needs_both_image_and_table(tmp_path):
    manifest = ensure_studies(
        StudyConfig(dims=2, size=32, num_train=600, num_val=1, num_test=1), tmp_path
    )
    rows = _rows(manifest)
    y = np.array([r["diagnosis"] == "malignant" for r in rows])
    burden = np.array(
        [[float(r["lesion_count"])] + [f in r["findings"] for f in FINDINGS] for r in rows]
    )
    labs = np.array(
        [
            [float(r[c]) if r[c] else np.nan for c in ("age", "crp", "wbc", "albumin")]
            + [r["sex"] == "M"]
            for r in rows
        ]
    )
    labs = np.where(np.isnan(labs), np.nanmean(labs, 0), labs)
    labs[:, 1] = np.log(labs[:, 1])

    def auc(x):  # noqa: ANN001, ANN202 - in-sample, an upper bound of what the part can explain
        return roc_auc_score(y, LogisticRegression(max_iter=2000).fit(x, y).decision_function(x))

    image, table, both = auc(burden), auc(labs), auc(np.hstack([burden, labs]))
    assert both > max(image, table) + 0.08, (image, table, both)
    assert 0.6 < image < 0.9 and 0.6 < table < 0.9
