"""modalforge applications: the CLI and recipes."""
