"""The per-process pair cache: one load for both towers, never a model shared twice."""

from __future__ import annotations

import pytest

from modalforge_clip.cache import PairCache


def _loader():
    made = []

    def load():
        made.append(object())
        return made[-1]

    return load, made


def test_both_sides_share_one_load_then_the_entry_is_dropped():
    cache = PairCache()
    load, made = _loader()
    first = cache.take("m", "image", load)
    assert cache.take("m", "text", load) is first and len(made) == 1
    assert cache.take("m", "image", load) is not first and len(made) == 2  # a new pair


def test_the_same_side_twice_loads_a_fresh_model():
    cache = PairCache()
    load, made = _loader()
    a = cache.take("m", "image", load)
    b = cache.take("m", "image", load)
    assert a is not b and cache.take("m", "text", load) is b and cache.loads == 2


def test_waiting_entries_are_bounded_oldest_dropped_first():
    cache = PairCache(max_entries=2)
    load, made = _loader()
    for key in ("a", "b", "c"):
        cache.take(key, "image", load)
    cache.take("a", "text", load)  # "a" was dropped: loaded again
    assert len(made) == 4
    assert cache.take("c", "text", load) is made[2]


def test_unknown_side_is_rejected():
    with pytest.raises(ValueError, match="side"):
        PairCache().take("m", "audio", lambda: None)
