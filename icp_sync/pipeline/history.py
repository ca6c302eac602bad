"""The mirror as the ICP core sees it: loaded once per run, cut at an as-of date.

A run (a sync's scoring step, ``derive``, ``tal``, ``review``) loads the live accounts and
opportunities from the store once into a :class:`History`; every later step works on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from icp_sync.config import Settings
from icp_sync.diagnostics import ObservationWindow, observation_window
from icp_sync.errors import PipelineError
from icp_sync.lifecycle import LifecycleSettings, account_outcomes, history_as_of
from icp_sync.model import CrmObject
from icp_sync.segments import EvidenceSettings, with_dimensions
from icp_sync.store import Store, StoredConnectorState

if TYPE_CHECKING:
    from icp_sync.lookalike import LookalikeSettings

__all__ = ["Base", "History", "connector_state", "evidence_settings", "lookalike_settings"]


@dataclass(frozen=True, slots=True)
class History:
    """The live (not deleted) accounts and opportunities of the mirror."""

    accounts: pd.DataFrame
    opportunities: pd.DataFrame

    @classmethod
    def load(cls, store: Store) -> History:
        """Read the mirror once."""
        return cls(
            accounts=store.mirror.load(CrmObject.ACCOUNT),
            opportunities=store.mirror.load(CrmObject.OPPORTUNITY),
        )

    @classmethod
    def empty(cls) -> History:
        """No history (a cycle that loads none)."""
        return cls(accounts=pd.DataFrame(), opportunities=pd.DataFrame())

    def window(self, now: datetime) -> ObservationWindow:
        """The span of the observed history (its end is the latest activity, never the future)."""
        return observation_window(self.accounts, self.opportunities, pd.Timestamp(now))

    def base(self, settings: Settings, *, as_of: datetime | None, now: datetime) -> Base:
        """The accounts (with segment dimensions) and their outcomes as of ``as_of``.

        ``as_of`` defaults to the end of the observed history, not ``now``: an export that
        ended years ago is measured up to its own end.
        """
        if self.accounts.empty:
            raise PipelineError("the mirror holds no accounts: run `icp-sync sync` first")
        window = self.window(now)
        cut = pd.Timestamp(as_of) if as_of is not None else window.end
        accounts, opportunities = history_as_of(self.accounts, self.opportunities, cut)
        lifecycle = LifecycleSettings(
            window_months=settings.lifecycle.window_months,
            windows=settings.lifecycle.windows,
            # snapshot fields (NPS, adoption) describe the export, not a past as-of date
            snapshot_fields=cut >= window.end - pd.Timedelta(days=1),
            observed_from=window.start,
        )
        outcomes = account_outcomes(accounts, opportunities, as_of=cut, settings=lifecycle)
        dims = with_dimensions(accounts, settings.segments).reset_index(drop=True)
        return Base(
            accounts=dims, outcomes=outcomes.reset_index(drop=True), window=window, as_of=cut
        )


@dataclass(frozen=True, slots=True)
class Base:
    """Accounts with their segment dimensions and lifecycle outcomes (row-aligned), as of a
    date inside the observed history."""

    accounts: pd.DataFrame
    outcomes: pd.DataFrame
    window: ObservationWindow
    as_of: pd.Timestamp


def evidence_settings(settings: Settings, blind: Sequence[str] = ()) -> EvidenceSettings:
    """The segment-evidence settings of the configuration; ``blind`` dimensions give no
    win-rate evidence (they were recorded only for one outcome)."""
    return EvidenceSettings(
        horizon=settings.lifecycle.window_months,
        win_rate_blind=frozenset(blind),
        dimensions=tuple(settings.segments.dimensions),
        max_depth=settings.segments.max_depth,
        min_accounts=settings.segments.min_accounts,
        weights=settings.icp.weights,
        gross_margin=settings.lifecycle.gross_margin,
        min_churn=settings.lifecycle.min_churn,
    )


def lookalike_settings(settings: Settings) -> LookalikeSettings:
    """The look-alike model settings of the configuration."""
    from icp_sync.lookalike import LookalikeSettings  # scikit-learn: only when a run trains

    config = settings.lookalike
    return LookalikeSettings(
        best_fit_share=config.best_fit_share,
        min_class=config.min_class,
        cv_folds=config.cv_folds,
        regularization=config.regularization,
        min_auc=config.min_auc,
    )


def connector_state(store: Store, settings: Settings) -> StoredConnectorState:
    """The configured connector's own state, kept in the state store."""
    return StoredConnectorState(store.ledger, settings.crm.connector)
