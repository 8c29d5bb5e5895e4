"""Extra links from Opus tasks to the Opus web app."""
