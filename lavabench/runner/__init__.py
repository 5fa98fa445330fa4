"""Request path: Jobs to Records. `plan`, `loop` (owns its Protocols: client, sink, observer,
`gate`), `retry`, `measure`, `grade` (the grade hook), `judge`, `cache`, `health` (samplers),
`workers`, `progress`.

May import wire, records.schema/verdict, datasets.prompt, grading, catalog; never pandas,
pyarrow, matplotlib, scipy, analysis or report."""
