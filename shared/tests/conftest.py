import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_network(monkeypatch):
    """Make every download fail as it would offline (and fast)."""
    import shared.data as data

    def refuse(url, dest, timeout=60):
        raise data.DataError(f"download of {url} failed (no network)")

    monkeypatch.setattr(data, "_download", refuse)


@pytest.fixture
def mirror():
    path = os.environ.get("REPRO_DATA_MIRROR")
    if not path or not Path(path).is_dir():
        pytest.skip("REPRO_DATA_MIRROR is not set to the offline mirror (make test sets it in CI)")
    return Path(path)
