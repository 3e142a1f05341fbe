"""One policy per module, grouped by domain (aws, kubernetes, compose, vm, platform); each module's `policy`."""
