"""Report: render an audit as a terminal table (:mod:`.table`) or JSON (:mod:`.json_report`)."""
