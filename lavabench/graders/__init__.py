"""One small module per grader; `lavabench.grading` registers them by name and is the facade
(`GRADERS`, `get_grader`, `check_grader`, `Grade`)."""
