"""The read API under /api/ (readings/urls.py): views, their query parameters,
their answers, and what the views share (permissions, pagination)."""
