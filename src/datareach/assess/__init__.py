"""The assess stage: judging an audit against policies (``--policy``).

:mod:`.policy` reads policy files and the built-in presets; :mod:`.evaluate` turns destinations
and findings into ``violations[]``.
"""

from datareach.assess.evaluate import assess, judge, sort_violations, verdict
from datareach.assess.policy import PRESETS, Policy, PolicyError, load_policy, preset_names

__all__ = ["PRESETS", "Policy", "PolicyError", "assess", "judge", "load_policy", "preset_names", "sort_violations", "verdict"]
