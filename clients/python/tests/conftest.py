"""The Python client's tests run against real 3-node clusters: the harness
of tests/integration/conftest.py (the rotad of ROTA_BUILD_DIR), loaded
under another module name and its fixtures re-exported here."""

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))  # The rota package (clients/python).

_spec = importlib.util.spec_from_file_location(
    "rota_integration_conftest", os.path.join(ROOT, "tests", "integration", "conftest.py"))
it = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = it
_spec.loader.exec_module(it)

# Fixtures and the report hook the fixtures rely on (rep_setup/rep_call).
shared_cluster = it.shared_cluster
cluster = it.cluster
worker_built = it.worker_built
pytest_runtest_makereport = it.pytest_runtest_makereport

Cluster = it.Cluster
wait_until = it.wait_until
ROTACTL = it.ROTACTL

import rota  # noqa: E402


def make_client(c, nodes=None, **kw):
    """A rota.Client for cluster @c (its CA and admin token in secure mode)."""
    nodes = nodes or c.nodes
    kw.setdefault("ca_file", c.ca)
    kw.setdefault("token", c.token)
    return rota.Client([n.http for n in nodes], **kw)


@pytest.fixture
def client(shared_cluster):
    cl = make_client(shared_cluster)
    yield cl
    cl.close()
