"""Batch classification of folders, archives and lists of photos (`python -m classifier.batch`)."""
