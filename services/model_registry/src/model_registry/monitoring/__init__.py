"""Model monitoring: reference profiles and drift statistics (framework-free core)."""
