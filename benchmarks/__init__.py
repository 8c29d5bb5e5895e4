"""Benchmarks of airflow-provider-opus against its emulator on loopback; see docs/benchmarks.md."""
