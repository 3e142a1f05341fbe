"""The platform's Pulumi policy pack (pulumi-policy).

`__main__.py` is the pack's entry point and the only place a `PolicyPack` is constructed (constructing one starts a
gRPC server and blocks). Everything else is importable without side effects: `rules/<domain>/<policy>.py` (one
policy each), `catalog.all_policies()`, `levels` (enforcement per environment), `evaluate` (the offline run that
`dp plan` and the tests use). See policies/README.md.
"""
