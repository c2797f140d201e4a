"""Views of a dataset for training: balanced (replicate/undersample), merged (taxonomy, dedup), split, reported.

- :mod:`sardata.views.balance`: ``balance()``, named balance runs, per-sample replication counts (``balance_<run_key>``).
- :mod:`sardata.views.merge`: ``merge()``: several datasets → one, labels mapped by a taxonomy, duplicates resolved.
- :mod:`sardata.views.split`: ``split()``: official / stratified / grouped splits, and ``leakage_check()``.
- :mod:`sardata.views.report`: ``balance_report()``: counts and imbalance ratios before/after (table, PNG, HTML).

The functions named like their modules (``balance``, ``merge``, ``split``) are imported from the modules
(``from sardata.views.balance import balance``), so that ``sardata.views.balance`` stays the module.
"""

from sardata.views.balance import (  # noqa: F401
    BalanceRun,
    balanced_view,
    delete_run,
    list_runs,
    load_run,
    replication_counts,
)
from sardata.views.merge import MergeReport  # noqa: F401
from sardata.views.report import BalanceReport, balance_report  # noqa: F401
from sardata.views.split import LeakageReport, leakage_check  # noqa: F401
