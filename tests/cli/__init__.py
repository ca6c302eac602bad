"""The CLI suite: commands run as a user would, their exit codes, output and hostile input."""
