"""The platform validation suite: user journeys run against any deployment (``scripts/test_*.py``).

Each service's checks are a :class:`~validation.core.Journey`: named steps run in order, each
printing one table row (ok/FAIL, milliseconds, evidence). Objects they create are named
``validate-<UTC timestamp>-...`` and deleted where the APIs allow it.
"""
