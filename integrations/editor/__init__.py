"""The portal's hub editors: every setting of the hub JSON as forms a marketer understands.

Each editor reads the hub's export (``hub_config_export``), shows it as forms, and writes the
changed part back through ``hub_config_import`` — the very path of the JSON import — so a form
and the JSON it stands for are validated and stored alike (docs/decisions.md, "Hub editors").
"""
