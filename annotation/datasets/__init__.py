"""Curated dataset snapshots (issue 14): filters and splits over a project's labeled items, a canonical JSONL file
with a content hash, writers for the other formats, the dataset card, and the Label Studio bridge.
docs/datasets.md says how it fits together."""
