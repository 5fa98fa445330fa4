"""Data path: what people read. `page` (HTML, summary.md/json, the figures' inputs), `figures`
(the matplotlib drawing), `workers` (figures drawn in forked processes while the records are
read), `figure_tasks` (what passes between them), `trends` (history figures), `compare`
(compare Markdown/JSON), `terminal` (rich tables). Computes no statistic."""
