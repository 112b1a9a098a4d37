"""The multi-process harness of tests/integration (real rotad clusters),
loaded under its own module name so this directory's tests can use its
Cluster and fixtures (a second module named "conftest" would clash)."""

import importlib.util
import os
import sys

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "conftest.py")
_spec = importlib.util.spec_from_file_location("rota_harness", _PATH)
harness = importlib.util.module_from_spec(_spec)
sys.modules["rota_harness"] = harness
_spec.loader.exec_module(harness)

# The fixtures and the report hook the harness relies on (_finish reads it).
cluster = harness.cluster
worker_built = harness.worker_built
pytest_runtest_makereport = harness.pytest_runtest_makereport
