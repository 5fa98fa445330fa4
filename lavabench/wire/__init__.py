"""Request path: bytes out, stamped bytes back. `protocol` (request body, SSE, chat chunks,
Retry-After: pure), `client` (HTTP, one failure mapping), `endpoints` (where, which credential).

Imports only errors, redaction and catalog-free stdlib/HTTP libraries; never the data stack."""
