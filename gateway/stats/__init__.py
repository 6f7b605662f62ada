"""Live signals per deployment: EWMAs of the gateway's own traffic, circuit breakers, and the
background scraper of each local worker's vLLM ``/metrics``, turned into
``policies.model.Candidate`` snapshots by ``FleetStats``. Imports: ``gateway.config``,
``policies``, ``aiohttp`` and ``prometheus_client`` (the scraper only).
"""
