"""The pipeline suite: one module per command or pipeline step, against files or a sandbox org."""
