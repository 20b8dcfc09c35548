"""Reads, one module per job: devices, series (downsampled), radio statistics,
filtered lists and CSV, units and labels. Each function takes what it needs
(and `now` where time matters) and returns querysets or typed results.
"""
