"""The worker loops (process, timer, projection) and the runner that starts them, one kind or all."""
