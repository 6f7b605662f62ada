"""The what-if simulator: a trace replayed through the gateway's policies on a simulated fleet.

``trace`` reads traces, ``fleet`` turns a gateway config into workers and paid APIs, ``worker``
and ``simulation`` are the discrete-event model, ``baselines`` the routers compared with,
``oracle`` the lower bound on paid spend, ``report``/``scenarios``/``plot`` the output, and
``replay`` the timing of a live replay. The CLI is ``python -m loadtests.simulate``.
"""
