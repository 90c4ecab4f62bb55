"""``cubegw-certify``: a conformance suite run against any gateway through a running
cubeplat (its admin HTTP API: fault rules, the wire message log, triggers on demand).

``client`` talks to the platform, ``engine`` runs cases and judges them, ``cases`` and
``lancases`` are the suite (docs/CERTIFICATION.md lists them), ``report`` writes JUnit,
HTML and JSON, ``cli`` is the command.
"""
