"""Shared fixtures: a tiny synthetic data set and an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl.data.synthetic import write_synthetic


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep decoded-image caches of the tests out of the user's cache."""
    if "CXR_CACHE_DIR" not in os.environ:
        os.environ["CXR_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session", autouse=True)
def shipped_real_data_refit():
    """The shipped ``choices.REAL_DATA_REFIT``, switched off for the session: the tests'
    synthetic folders count as real data (only the built-in demo does not), where the binary
    refit is on by default and would add five fold models to every one-epoch test search.
    Tests of the refit ask for it (``refit="cv:2"``); the default's own test puts it back."""
    from automl.settings import choices

    shipped = dict(choices.REAL_DATA_REFIT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(choices, "REAL_DATA_REFIT", {})
        yield shipped


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "chest_xray", per_class=24, size=48)


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = os.environ.get("CXR_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("real data not available: set CXR_DATA_DIR to the chest_xray folder")
    return Path(path)


@pytest.fixture(scope="session")
def binary_run(synthetic_data, tmp_path_factory) -> Path:
    """One finished tiny binary search (2 trials, ensemble of 2), shared by the tests that
    only read or apply a run."""
    from automl.search.orchestrator import run_search
    from automl.settings.run_config import SearchConfig

    return run_search(SearchConfig(data=str(synthetic_data), tuner="random", max_trials=2, epochs=1,
                                   image_size=32, ensemble=2, fixed={"blocks": 2},
                                   out=str(tmp_path_factory.mktemp("shared-runs"))),
                      log=lambda *a: None)


# Longest first: with two pytest processes the suite ends when the later one does, so the
# long end-to-end searches start at once and the short tests fill in around them. The
# durations of the previous run (pytest's cache) give the order; without them, the tests
# marked slow go first.
_DURATIONS = "cxr-automl/durations"


def pytest_collection_modifyitems(config, items):
    cache = getattr(config, "cache", None)
    known = cache.get(_DURATIONS, {}) if cache else {}

    def expected(item):
        return known.get(item.nodeid, 60.0 if item.get_closest_marker("slow") else 1.0)

    items.sort(key=expected, reverse=True)


def pytest_runtest_logreport(report):
    if report.when == "call":
        _measured[report.nodeid] = round(report.duration, 2)


_measured: dict[str, float] = {}


def pytest_sessionfinish(session):
    config = session.config
    if getattr(config, "cache", None) is None or hasattr(config, "workerinput") or not _measured:
        return  # the controller alone writes, once it has every test's duration
    config.cache.set(_DURATIONS, {**config.cache.get(_DURATIONS, {}), **_measured})
