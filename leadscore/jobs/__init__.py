"""Jobs over whole exports: batch scoring and Dask scale-out (above the core and training)."""
