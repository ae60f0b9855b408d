"""Data machinery shared by readers and pipelines: path policy, splits, transform chains."""
