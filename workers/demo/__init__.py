"""`crmflow demo`: the whole service in one process on a simulated clock, driven by a generated workload."""
