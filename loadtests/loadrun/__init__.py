"""The load-test runner's parts (``python -m loadtests.run``): the scenario file, Locust's
output, the gateway's counters, the SLO verdict, the capacity steps and the processes.

Locust runs only as its own process: nothing here imports ``locust`` (it monkey-patches the
standard library with gevent). Imports: stdlib, ``yaml``, ``gateway.admin_client``,
``loadtests``.
"""
