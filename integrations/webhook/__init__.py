"""The Komo webhook's DRF parts (the views are in ``integrations/apis.py``): authentication
classes for the ingest token and the signature, the per-hub throttle, the parser that keeps the
raw bytes, the JSON-only negotiation and renderer, the envelope serializer and the OpenAPI
extensions. Each does only what the webhook needs, so DRF costs little per request
(docs/decisions.md, "The webhook is a DRF view, kept lean")."""
