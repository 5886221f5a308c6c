"""Where imported rows go: the built-in local store, or the owning service through Dapr."""
