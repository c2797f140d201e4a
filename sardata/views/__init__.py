"""Views of a dataset for training: balanced (replicate/undersample), merged (taxonomy, dedup), split, reported.

- :mod:`sardata.views.balance`: named balance runs, per-sample replication counts (``balance_<run_key>``).
- :mod:`sardata.views.merge`: several datasets → one, labels mapped by a taxonomy, duplicates resolved.
- :mod:`sardata.views.split`: official / stratified / grouped splits and the leakage check.
- :mod:`sardata.views.report`: counts and imbalance ratios before/after balancing (table, PNG, HTML).
"""

from sardata.views.balance import (  # noqa: F401
    BalanceRun,
    balance,
    balanced_view,
    delete_run,
    list_runs,
    load_run,
    replication_counts,
)
from sardata.views.merge import MergeReport, merge  # noqa: F401,E402
from sardata.views.report import BalanceReport, balance_report  # noqa: F401,E402
from sardata.views.split import LeakageReport, leakage_check, split  # noqa: F401,E402
