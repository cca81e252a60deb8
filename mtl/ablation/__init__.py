"""What closes the gap to the paper's EMO-DB numbers? An ablation grid and a nested model selection.

A faithful linear PathNet trained from scratch on the real EMO-DB copy scores
far below the paper's 0.89 (Table 4, :math:`A_{\\text{EMO}}`). This package
asks which of the reproduction's open choices move that number, on real
EMO-DB (all 7 classes), as experiment cells that write ordinary records.
One module per job, in the order data flows:

=====================  ===================================================================
module                 what it holds
=====================  ===================================================================
:mod:`.budget`         the budget of the committed records, declared once (:data:`BUDGET`)
:mod:`.grid`           the factors, one setting's configuration, the grid's cells
:mod:`.sizes`          sample counts of folds and sources, before anything trains
:mod:`.cost`           SGD steps and hours per cell, from a committed step-time benchmark
:mod:`.inner`          inner-validation runs: a cell kind :func:`mtl.sweep.run_sweep` runs
:mod:`.nested`         nested model selection: choose on inner folds, score the outer once
:mod:`.records`        finding and loading the ablation's records, with factor columns
:mod:`.analysis`       mean ± sd tables, paired tests, factor effects
:mod:`.verdict`        the conclusions in sentences computed from the records
:mod:`.chapter`        the notebook's façade (:func:`plan_ablation`, :class:`AblationPlan`)
=====================  ===================================================================

The names below are the ones the chapter and ``scripts/run_ablation.py`` use.
"""

from mtl.ablation.analysis import CONTRASTS, DECISIONS, SETTING_COLUMNS, ablation_table, factor_effects, paired_test
from mtl.ablation.budget import BUDGET, AblationBudget, describe_budget
from mtl.ablation.chapter import AblationPlan, plan_ablation
from mtl.ablation.cost import (STEP_SECONDS_FILE, cost_summary, estimate_cost, measure_step_seconds,
                               read_step_seconds, step_seconds, step_seconds_source, steps_per_cell,
                               write_step_seconds)
from mtl.ablation.grid import (ABLATION, FACTORS, NESTED, ablation_cells, ablation_config, budget_cells,
                               cell_factors)
from mtl.ablation.inner import InnerCell, run_inner_cell
from mtl.ablation.nested import DEFAULT_CANDIDATES, NestedSelection, budget_selections, candidate_grid, \
    saved_selections
from mtl.ablation.records import ANCHORS, anchor_records, load_ablation_records, records_overview, with_anchors
from mtl.ablation.verdict import AblationFindings, AblationSummary, ablation_findings, ablation_summary

__all__ = [
    "ABLATION", "NESTED", "FACTORS", "DECISIONS", "BUDGET", "AblationBudget", "describe_budget",
    "ablation_config", "ablation_cells", "budget_cells", "cell_factors", "steps_per_cell", "estimate_cost",
    "cost_summary", "measure_step_seconds", "STEP_SECONDS_FILE", "read_step_seconds", "write_step_seconds",
    "step_seconds", "step_seconds_source", "load_ablation_records", "ablation_table", "paired_test",
    "SETTING_COLUMNS", "candidate_grid", "InnerCell", "run_inner_cell", "NestedSelection",
    "saved_selections", "budget_selections", "AblationSummary", "ablation_summary", "AblationFindings",
    "ablation_findings", "DEFAULT_CANDIDATES", "AblationPlan", "plan_ablation", "ANCHORS",
    "anchor_records", "with_anchors", "CONTRASTS", "factor_effects", "records_overview",
]
