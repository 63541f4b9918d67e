"""The in-memory photometry of one partition after profile mapping and validation.

This is the hand-off from the catalog layer to the SED layer: plain numpy arrays in µJy, one row
per valid source, one column per band, NaN meaning "not observed in this band". Where
``is_limit`` is set the band's flux is an upper limit and its error the limit's 1σ width
(Sawicki 2012); ``ebv`` is the Milky Way E(B−V) still to be corrected (0: none). Filters are
strings: a built-in band name (:mod:`sedscale.bands`) or an absolute path to a filter file
(two columns: wavelength in Å, throughput).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Photometry:
    """Fluxes of N sources in B bands, ready to fit."""

    source_id: np.ndarray  # (N,) int64
    flux: np.ndarray  # (N, B) float64, µJy; NaN = not observed
    error: np.ndarray  # (N, B) float64, µJy; NaN = not observed
    redshift: np.ndarray  # (N,) float64; NaN = unknown (photo-z if the workflow allows)
    filters: tuple[str, ...]  # (B,) built-in band names or absolute filter-file paths
    row_index: np.ndarray  # (N,) int64, row within the partition, for tracing back to the input
    is_limit: np.ndarray | None = None  # (N, B) bool: flux is an upper limit; None → no limits
    ebv: np.ndarray | None = None  # (N,) float64 Milky Way E(B−V) [mag]; None → 0 (corrected)

    def __post_init__(self) -> None:
        n, b = self.flux.shape
        if self.is_limit is None:
            object.__setattr__(self, "is_limit", np.zeros((n, b), bool))
        if self.ebv is None:
            object.__setattr__(self, "ebv", np.zeros(n))
        if (self.error.shape != (n, b) or self.source_id.shape != (n,) or self.redshift.shape != (n,)
                or self.limits.shape != (n, b) or self.extinction.shape != (n,)):
            raise ValueError("Photometry arrays disagree in shape")
        if len(self.filters) != b:
            raise ValueError(f"{b} flux columns but {len(self.filters)} filters")

    def __len__(self) -> int:
        return int(self.source_id.shape[0])

    @property
    def limits(self) -> np.ndarray:
        """:attr:`is_limit`, typed: (N, B) bool, never None after construction."""
        assert self.is_limit is not None
        return self.is_limit

    @property
    def extinction(self) -> np.ndarray:
        """:attr:`ebv`, typed: (N,) float64, never None after construction."""
        assert self.ebv is not None
        return self.ebv

    @property
    def has_limits(self) -> np.ndarray:
        """(N,) bool: the source has at least one upper-limit band."""
        flagged: np.ndarray = np.any(self.limits, axis=1)
        return flagged

    @property
    def n_bands_observed(self) -> np.ndarray:
        """Bands with a finite flux and error (upper limits included), per source."""
        observed: np.ndarray = np.sum(np.isfinite(self.flux) & np.isfinite(self.error), axis=1)
        return observed

    @staticmethod
    def concat(parts: "list[Photometry]") -> "Photometry":
        """The sources of ``parts`` (same filters, at least one part) one after another."""
        return Photometry(
            source_id=np.concatenate([p.source_id for p in parts]),
            flux=np.concatenate([p.flux for p in parts]),
            error=np.concatenate([p.error for p in parts]),
            redshift=np.concatenate([p.redshift for p in parts]),
            filters=parts[0].filters,
            row_index=np.concatenate([p.row_index for p in parts]),
            is_limit=np.concatenate([p.limits for p in parts]),
            ebv=np.concatenate([p.extinction for p in parts]),
        )

    def take(self, index: np.ndarray) -> "Photometry":
        """The sources at ``index`` (an integer or boolean array)."""
        return Photometry(
            source_id=self.source_id[index],
            flux=self.flux[index],
            error=self.error[index],
            redshift=self.redshift[index],
            filters=self.filters,
            row_index=self.row_index[index],
            is_limit=self.limits[index],
            ebv=self.extinction[index],
        )
