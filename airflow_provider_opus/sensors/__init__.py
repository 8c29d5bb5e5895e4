"""The sensor that waits for an Opus job."""
