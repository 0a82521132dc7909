"""The command line: the training job's data, models and entry points."""
