"""Data path: what people read. `page` (figures, HTML, summary.md/json), `trends` (history
figures), `compare` (compare Markdown/JSON), `terminal` (rich tables). Computes no statistic."""
