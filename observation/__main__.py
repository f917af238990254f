"""``python -m observation``: print docs/features.md (the feature table as Markdown)."""
from .table import features_document

print(features_document(), end="")
