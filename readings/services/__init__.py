"""Writes, one module per job: ingest (and its PostgreSQL fast path), payload
decoding, downlink acknowledgements, rejections, maintenance (prune, redecode).
Each function takes `now` where time matters, and commits what it says it does.
"""
