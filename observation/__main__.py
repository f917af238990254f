"""``python -m observation``: print the feature table as Markdown."""
from .table import feature_table_markdown

print(feature_table_markdown())
