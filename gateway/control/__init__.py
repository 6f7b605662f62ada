"""Runtime control of deployments: operators disable, enable and drain them on every replica."""
