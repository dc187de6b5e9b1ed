"""A run as the operator sees it: the load lock, the load history, the dry run, and opening the warehouse."""
