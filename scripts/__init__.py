"""Developer scripts: ``make demo`` (demo.py) and the local Airflow deployment it shares with the e2e tests."""
