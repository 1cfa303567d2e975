"""The pure core: the status words, the columns of data_sources, the debounce state
machine, placement of a source's probes, latency rollups, dependencies, maintenance
windows, the daemon's own counters, secret references, database URLs and the exception
root. No I/O, no clock (time is passed in), no SQL. Imports nothing of healthd but
core itself; everything else may import it.
"""
