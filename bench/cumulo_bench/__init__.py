"""`make bench`: cumulo measured beside the raw building blocks, in the same run."""
