"""Input files uploaded into the orchestrator's artifact store, for runs to read by URI."""
