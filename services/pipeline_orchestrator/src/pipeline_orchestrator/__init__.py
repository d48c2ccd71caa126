"""Pipeline orchestrator service: DAG pipelines that never lose a run, and scale out."""

__version__ = "0.1.0"
