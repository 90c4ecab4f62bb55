"""``cubegw-certify``: a conformance suite run against any gateway through a running
cubeplat (its admin HTTP API: fault rules, the wire message log, triggers on demand).

``client`` talks to the platform, ``engine`` runs cases and judges them, ``cases``
(sections 5 and 6), ``plugincases`` (section 7, Reports, the catalogue) and ``lancases``
(section 8, on the DUT's LAN port) are the suite (docs/CERTIFICATION.md lists them),
``cli`` is the command and writes the JUnit, HTML and JSON reports.
"""
