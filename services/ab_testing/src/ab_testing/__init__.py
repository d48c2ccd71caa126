"""A/B testing service: deterministic routing, sound statistics, safe rollouts."""

__version__ = "0.1.0"
