"""Operators that upload to Opus, run Opus jobs and fetch their results, and their shared base."""
