"""The look-alike model: which accounts resemble the best customers, and why.

Customers whose composite outcome (win, retention, expansion, NPS, adoption) is in the top
share are the *best-fit archetype*; every other account with an outcome (weaker customers,
deals only lost) is not. A logistic regression on firmographic and technographic features
(dimension values, their pairwise crosses, size, revenue, tech stack) learns the difference;
its cross-validated AUC and calibration are reported. Being linear, each account's score
decomposes exactly into feature contributions, which become its reasons.

Too little data (fewer best-fit or other accounts than the configured minimum) does not
train a model, and a model whose cross-validated AUC is below ``min_auc`` (no better than
chance) steps aside: scores then come from the segment evidence, and the result says so.

Pure: frames in, frames out.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from icp_sync.icp import rule_label

__all__ = [
    "MODEL_INPUTS",
    "LookalikeModel",
    "LookalikeSettings",
    "Scores",
    "features",
    "score_accounts",
    "train",
]

_CROSS = "\N{MULTIPLICATION SIGN}"
_NUMERIC = ("log_employees", "log_revenue", "log_revenue_per_employee")
_NUMERIC_WORDS = {
    "log_employees": "company size",
    "log_revenue": "annual revenue",
    "log_revenue_per_employee": "revenue per employee",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LookalikeSettings:
    """Training choices.

    Attributes:
        best_fit_share: Share of customers (by composite outcome) that form the archetype.
        min_class: Fewest accounts in each class to train at all.
        cv_folds: Cross-validation folds for AUC and calibration.
        max_cv_rows: Cross-validate on a sample of at most this many rows (large orgs): at
            30,000 rows the AUC's standard error is about 0.003, well below its spread
            across folds, so more rows cost time and tell nothing more.
        max_train_rows: Fit the final model on a sample of at most this many rows; past a few
            hundred thousand, more rows no longer change a model with this few parameters.
        regularization: Inverse L2 strength of the logistic regression.
        seed: Seed of every random choice.
        min_auc: Below this cross-validated AUC the model ranks nothing.
    """

    best_fit_share: float = 0.5
    min_class: int = 30
    cv_folds: int = 5
    max_cv_rows: int = 30_000
    max_train_rows: int = 300_000
    regularization: float = 0.5
    seed: int = 0
    min_auc: float = 0.6


@dataclass(frozen=True, slots=True, kw_only=True)
class LookalikeModel:
    """A trained look-alike model (or the reason there is none).

    Attributes:
        pipeline: The fitted feature pipeline + classifier; ``None`` when not trained.
        dimensions: Categorical dimensions used as features.
        fallback_reason: Why no model was trained (scores then come from segment rules).
        cv_auc: Mean cross-validated ROC AUC; ``cv_auc_sd`` its spread across folds.
        brier: Brier score of the cross-validated probabilities.
        calibration: Rows of (mean predicted, observed rate, accounts) per probability bin.
        n_train: Accounts trained on; ``n_best`` of them best-fit.
    """

    pipeline: Pipeline | None
    dimensions: tuple[str, ...]
    fallback_reason: str | None = None
    cv_auc: float = float("nan")
    cv_auc_sd: float = float("nan")
    brier: float = float("nan")
    calibration: list[tuple[float, float, int]] = field(default_factory=list)
    n_train: int = 0
    n_best: int = 0
    reference: pd.DataFrame | None = None
    """The best-fit customers the model learned from (for "looks like" reasons)."""
    without: tuple[str, ...] = ()
    """:data:`MODEL_INPUTS` left out: prospects never have them, so they cannot rank any."""

    def summary(self) -> dict[str, object]:
        """JSON-ready description."""
        return {
            "trained": self.pipeline is not None,
            "fallback_reason": self.fallback_reason,
            "cv_auc": _finite(self.cv_auc),
            "cv_auc_sd": _finite(self.cv_auc_sd),
            "brier": _finite(self.brier),
            "calibration": [
                {"predicted": round(p, 4), "observed": round(o, 4), "accounts": n}
                for p, o, n in self.calibration
            ],
            "n_train": self.n_train,
            "n_best": self.n_best,
            "inputs_left_out": list(self.without),
        }


def _finite(value: float) -> float | None:
    return round(value, 4) if np.isfinite(value) else None


MODEL_INPUTS = ("employees", "annual_revenue", "tech_stack")
"""Account columns the model reads besides the dimensions (each can be left out)."""


def features(
    accounts: pd.DataFrame, dimensions: Sequence[str], without: Collection[str] = ()
) -> pd.DataFrame:
    """The model's input columns: dimensions, their pairwise crosses, size, revenue, tech;
    minus what derives from the ``without`` inputs (:data:`MODEL_INPUTS`)."""
    frame = pd.DataFrame(index=accounts.index)
    dims = [d for d in dimensions if d in accounts.columns]
    for d in dims:
        frame[d] = accounts[d].astype("string").fillna("(blank)").astype(object)
    for a, b in itertools.combinations(dims, 2):
        frame[f"{a}{_CROSS}{b}"] = (frame[a] + _CROSS + frame[b]).astype(object)
    employees = accounts["employees"].where(accounts["employees"] > 0)
    revenue = accounts["annual_revenue"].where(accounts["annual_revenue"] > 0)
    if "employees" not in without:
        frame["log_employees"] = np.log(employees)
    if "annual_revenue" not in without:
        frame["log_revenue"] = np.log(revenue)
    if not {"employees", "annual_revenue"} & set(without):
        frame["log_revenue_per_employee"] = np.log(revenue / employees)
    if "tech_stack" not in without:
        frame["tech_stack"] = accounts["tech_stack"].fillna("").astype(str)
    return frame


class TokenFlags(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """One 0/1 column per frequent token of a ``;``-separated list column (the tech stack).

    Vectorised string matching instead of per-row tokenising: a million rows take seconds.
    """

    def __init__(self, min_count: int = 5) -> None:
        self.min_count = min_count

    def fit(self, x: pd.Series, y: object = None) -> TokenFlags:
        """Learn the tokens seen at least ``min_count`` times."""
        del y
        # tokenise each distinct stack once, weighted by how many rows list it
        codes, uniques = pd.factorize(pd.Series(x), use_na_sentinel=False)
        rows = np.bincount(codes, minlength=len(uniques))
        tokens = _split_tokens(pd.Series(uniques, dtype=object))
        counts = pd.Series(rows[tokens.index.to_numpy()]).groupby(tokens.to_numpy(dtype=object))
        totals = counts.sum()
        self.tokens_ = sorted(str(t) for t in totals[totals >= self.min_count].index)
        return self

    def transform(self, x: pd.Series) -> sparse.csr_matrix:
        """Flag, for every row, which learned tokens it lists (each distinct stack once)."""
        codes, uniques = pd.factorize(pd.Series(x), use_na_sentinel=False)
        dense = self._flags(pd.Series(uniques, dtype=object))[codes]
        return sparse.csr_matrix(dense.astype(np.float64))

    def _flags(self, x: pd.Series) -> np.ndarray:
        padded = (
            ";"
            + x.fillna("")
            .astype("string")
            .str.casefold()
            .str.replace(r"\s*;\s*", ";", regex=True)
            .str.strip()
            + ";"
        )
        columns = [
            padded.str.contains(f";{t};", regex=False).to_numpy(dtype=bool) for t in self.tokens_
        ]
        return np.column_stack(columns) if columns else np.zeros((len(padded), 0), dtype=bool)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """One name per learned token."""
        del input_features
        return np.asarray(self.tokens_, dtype=object)


def _split_tokens(values: pd.Series) -> pd.Series:
    exploded = values.fillna("").astype("string").str.casefold().str.split(";").explode()
    stripped = exploded.str.strip()
    return stripped[stripped.notna() & (stripped != "")]


def _pipeline(x: pd.DataFrame, settings: LookalikeSettings) -> Pipeline:
    numeric = [c for c in _NUMERIC if c in x.columns]
    categorical = [c for c in x.columns if c not in _NUMERIC and c != "tech_stack"]
    parts: list[tuple[str, object, object]] = [
        (
            "categories",
            OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=True),
            categorical,
        ),
        (
            "numbers",
            make_pipeline(
                FunctionTransformer(_finite_or_nan, feature_names_out="one-to-one"),
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler(),
            ),
            numeric,
        ),
    ]
    if "tech_stack" in x.columns and x["tech_stack"].str.len().gt(0).any():
        parts.append(("tech", TokenFlags(), "tech_stack"))
    transformer = ColumnTransformer(parts, sparse_threshold=1.0)
    classifier = LogisticRegression(C=settings.regularization, max_iter=2000)
    return Pipeline([("features", transformer), ("model", classifier)])


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return np.where(np.isfinite(array), array, np.nan)


def best_fit_labels(outcomes: pd.DataFrame, outcome: pd.Series, share: float) -> pd.Series:
    """1 for the best-fit archetype, 0 for other accounts with outcomes, NaN otherwise."""
    customer = outcomes["is_customer"].to_numpy(dtype=bool)
    values = outcome.to_numpy(dtype=float)
    known = ~np.isnan(values)
    labels = np.full(len(values), np.nan)
    labels[known] = 0.0
    customer_values = values[known & customer]
    if customer_values.size:
        cut = np.quantile(customer_values, 1 - share)
        labels[known & customer & (values >= cut)] = 1.0
    return pd.Series(labels, index=outcome.index)


def train(
    accounts: pd.DataFrame,
    labels: pd.Series,
    dimensions: Sequence[str],
    settings: LookalikeSettings = LookalikeSettings(),
    *,
    without: Collection[str] = (),
) -> LookalikeModel:
    """Fit and validate the look-alike model, or explain why it cannot be fitted.

    Args:
        accounts: Accounts with dimension columns.
        labels: :func:`best_fit_labels`, aligned with ``accounts``.
        dimensions: Categorical dimensions to use.
        settings: Training choices.
        without: :data:`MODEL_INPUTS` to leave out (recorded only for customers).
    """
    dims = tuple(d for d in dimensions if d in accounts.columns)
    left_out = tuple(i for i in MODEL_INPUTS if i in without)
    best = labels.eq(1).to_numpy()
    columns = ["account_id", "name", "employees", "annual_revenue", *dims]
    reference = accounts.loc[best, [c for c in columns if c in accounts.columns]].reset_index(
        drop=True
    )
    known = labels.notna().to_numpy()
    y = labels.to_numpy()[known].astype(int)
    n_best = int(y.sum())
    n_other = int(len(y) - n_best)
    if min(n_best, n_other) < settings.min_class:
        reason = (
            f"too little history to train a look-alike model: {n_best} best-fit and {n_other} "
            f"other accounts with outcomes (need {settings.min_class} of each); fit scores "
            "come from segment evidence instead"
        )
        return LookalikeModel(
            pipeline=None,
            dimensions=dims,
            without=left_out,
            fallback_reason=reason,
            n_train=len(y),
            n_best=n_best,
            reference=reference,
        )
    x = features(accounts.loc[known], dims, left_out)
    folds = min(settings.cv_folds, n_best, n_other)
    rng = np.random.default_rng(settings.seed)
    sample = np.arange(len(y))
    if len(y) > settings.max_cv_rows:
        sample = np.sort(rng.choice(len(y), settings.max_cv_rows, replace=False))
    predicted = np.full(len(sample), np.nan)
    aucs = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    x_cv, y_cv = x.iloc[sample], y[sample]
    for train_index, test_index in splitter.split(x_cv, y_cv):
        fold = _pipeline(x_cv, settings).fit(x_cv.iloc[train_index], y_cv[train_index])
        probability = fold.predict_proba(x_cv.iloc[test_index])[:, 1]
        predicted[test_index] = probability
        aucs.append(roc_auc_score(y_cv[test_index], probability))
    observed, mean_predicted = calibration_curve(y_cv, predicted, n_bins=10, strategy="quantile")
    bins = np.quantile(predicted, np.linspace(0, 1, 11))
    counts = np.histogram(predicted, bins=np.unique(bins))[0]
    calibration = [
        (float(p), float(o), int(n))
        for p, o, n in zip(mean_predicted, observed, counts, strict=False)
    ]
    cv_auc = float(np.mean(aucs))
    if cv_auc < settings.min_auc:
        return LookalikeModel(
            pipeline=None,
            dimensions=dims,
            without=left_out,
            fallback_reason=(
                f"the look-alike model's cross-validated AUC of {cv_auc:.2f} is below "
                f"{settings.min_auc:.2f}, no better than chance: it ranks nothing, and segment "
                "lifts rank the Target Account List"
            ),
            cv_auc=cv_auc,
            cv_auc_sd=float(np.std(aucs)),
            brier=float(brier_score_loss(y_cv, predicted)),
            calibration=calibration,
            n_train=len(y),
            n_best=n_best,
            reference=reference,
        )
    fit_rows = np.arange(len(y))
    if len(y) > settings.max_train_rows:
        fit_rows = np.sort(rng.choice(len(y), settings.max_train_rows, replace=False))
    pipeline = _pipeline(x, settings).fit(x.iloc[fit_rows], y[fit_rows])
    return LookalikeModel(
        pipeline=pipeline,
        dimensions=dims,
        without=left_out,
        cv_auc=cv_auc,
        cv_auc_sd=float(np.std(aucs)),
        brier=float(brier_score_loss(y_cv, predicted)),
        calibration=calibration,
        n_train=len(y),
        n_best=n_best,
        reference=reference,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Scores:
    """Fit of every account.

    Attributes:
        score: 0-100 fit score per account (probability of being best-fit, in percent).
        signals: The account's strongest positive signals, in words.
    """

    score: pd.Series
    signals: pd.Series


def score_accounts(
    model: LookalikeModel, accounts: pd.DataFrame, fallback: pd.Series | None = None
) -> Scores:
    """Score accounts with the model, or with ``fallback`` lifts when there is no model.

    Args:
        model: The trained model.
        accounts: Accounts with dimension columns.
        fallback: Per-account segment lift (1.0 = average), used when the model is missing:
            the score is then ``50 * lift`` capped to 0-100.
    """
    if model.pipeline is None:
        lift = fallback if fallback is not None else pd.Series(1.0, index=accounts.index)
        score = (50 * lift.fillna(1.0)).clip(0, 100).round().astype(int)
        return Scores(score=score, signals=pd.Series("", index=accounts.index))
    x = features(accounts, model.dimensions, model.without)
    transformer = model.pipeline.named_steps["features"]
    classifier = model.pipeline.named_steps["model"]
    matrix = sparse.csr_matrix(transformer.transform(x))
    probability = classifier.predict_proba(matrix)[:, 1]
    score = pd.Series(np.round(100 * probability).astype(int), index=accounts.index)
    names = [_feature_words(n) for n in transformer.get_feature_names_out()]
    signals = _signals(matrix, classifier.coef_[0], names)
    return Scores(score=score, signals=pd.Series(signals, index=accounts.index))


def _signals(matrix: sparse.csr_matrix, coef: np.ndarray, names: list[str]) -> np.ndarray:
    """The two features that raise each account's score most, in words ("" when none)."""
    # numeric features are centred: a contribution is relative to the average account
    contribution = matrix.multiply(coef).tocsr()
    rows = np.repeat(np.arange(contribution.shape[0]), np.diff(contribution.indptr))
    values = contribution.data
    keep = values > 0.05
    rows, cols, values = rows[keep], contribution.indices[keep], values[keep]
    order = np.lexsort((-values, rows))
    rows, cols = rows[order], cols[order]
    first = np.r_[0, np.flatnonzero(np.diff(rows)) + 1] if len(rows) else np.array([], dtype=int)
    words = np.array(names, dtype=object)
    out = np.full(contribution.shape[0], "", dtype=object)
    out[rows[first]] = words[cols[first]]
    second = first + 1
    second = second[(second < len(rows)) & np.isin(second, first, invert=True)]
    out[rows[second]] = out[rows[second]] + "; " + words[cols[second]]
    return out


def _feature_words(name: str) -> str:
    kind, _, rest = name.partition("__")
    if kind == "tech":
        return f"uses {rest}"
    if kind == "numbers":
        base = rest.removeprefix("missingindicator_")
        if rest.startswith("missingindicator_"):
            return f"{_NUMERIC_WORDS.get(base, base)} unknown"
        return _NUMERIC_WORDS.get(base, base)
    column, _, value = rest.rpartition("_")
    if not column:
        return rest
    if _CROSS in column:
        dims = column.split(_CROSS)
        return rule_label(dict(zip(dims, value.split(_CROSS), strict=False)))
    return rule_label({column: value})
