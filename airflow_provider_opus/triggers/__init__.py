"""The trigger that waits for an Opus job in the triggerer."""
