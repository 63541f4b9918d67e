"""Campaigns: the directory, the Zarr results store, done-markers, resume, status and export.

One module per noun: ``paths`` (every on-disk name), ``meta`` (frozen inputs), ``manifest``,
``store`` (Zarr layout and encoding), ``commit`` (atomic partition commit), ``state``
(done-markers), ``resume``, ``status``, ``export``, ``workflow`` (recipes), ``create``. This
package never imports an engine; engines map :func:`sedscale.pipeline.process_partition`.
"""
