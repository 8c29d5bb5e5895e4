"""Hooks: the Opus API from Airflow (``OpusHook``, ``OpusAsyncHook``)."""
