"""Spec + files to validated, rendered, hashed prompts. `prompt` (stdlib: what the request path
carries), `spec` (formats, validation, rendering, hashing), `pull` (`lavabench data pull`)."""
