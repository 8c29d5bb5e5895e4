"""
What the tests, ``make demo`` and the benchmarks share to run things: not tests themselves.

- ``processes``: long-running processes in their own sessions, stopped without leftovers (``make demo-stop``).
- ``emulator_process``: the Opus emulator in a process of its own (the one class for tests, demo and benchmarks).
- ``deployment``: a real local Airflow deployment driven through its REST API.
- ``task_context``: a task context, task state store and fake clock to run operators outside the task runner.
"""
