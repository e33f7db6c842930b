import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Soundness properties run 500 examples in CI (and by default); EMLPRESS_QUICK=1 for a quick pass.
settings.register_profile(
    "ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "quick", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("quick" if os.environ.get("EMLPRESS_QUICK") else "ci")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: set (by .ci/run) to fail, not skip, the tests that need ../shared/data when it is missing
REQUIRE_SHARED = "EMLPRESS_REQUIRE_SHARED_DATA"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository; the tests that need it skip, naming the
    path, where it is absent (a clone elsewhere), and fail under ``EMLPRESS_REQUIRE_SHARED_DATA``."""
    if not SHARED.is_dir():
        msg = f"the shared data directory {SHARED} is missing (it must sit beside the repo)"
        if os.environ.get(REQUIRE_SHARED):
            pytest.fail(f"{msg}; {REQUIRE_SHARED} is set")
        pytest.skip(msg)
    return SHARED
