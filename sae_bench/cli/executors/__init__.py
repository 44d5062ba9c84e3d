"""Where a sweep's SAEs are scored: in this process (the default, `commands.cmd_run`) or on a
Ray cluster (`ray_executor`, the optional `ray` extra, imported only when asked for).

- `grouping`: which SAEs can share an evaluation context, and each worker's share;
- `handover`: the supervised dictionaries and fit activations, built once and handed to
  workers, and a cache that counts what a process had to build itself;
- `worker`: what one worker process does (build one context, score its share), free of Ray;
- `ray_executor`: the driver (cluster, resources, dispatch, atomic writes, faults);
- `host_transfers`: a recorder of device-to-host transfers, for the GPU path's test.
"""
