"""A simulated Sigfox fleet and the load generator that plays it to a server.

`fleet` is the pure model: devices, their frames on a timeline, and the
callback requests the backend would make for each frame (deterministic given a
seed; no Django, no I/O). `load` sends such requests over keep-alive HTTP
connections from worker threads and counts the answers. The command
`manage.py simulate` wires the two together.
"""
