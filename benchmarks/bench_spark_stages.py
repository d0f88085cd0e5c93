"""What the Spark engine's parts cost: the figures docs/scaling.md builds on.

* the Spark session's start in local[2] (JVM, session, first job, first Python job);
* the broadcast payload (the knowledge base, pickled) in bytes;
* the destination stages (geo, domains, ownership, data_types) per 1,000 destinations: in this
  process (cold: the ownership resolver's memo empty; warm: a second pass), and on Spark's
  executors through mapInArrow (the job's wall time less that of the same job with an identity
  function instead of the stages);
* an executor Python worker's one-off cost: the context made from the payload (geo data loaded,
  knowledge base unpickled).

    python benchmarks/bench_spark_stages.py [--destinations 1000,10000,100000] [--partitions 2]
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from datareach.engine import AuditOptions, Pipeline
from datareach.engine.local import destination_stages, enrich_context, prepare
from datareach.engine.spark import (
    _CONTEXTS,
    EnrichPayload,
    enrich_partitions,
    enrich_payload,
    payload_size,
    spark_session,
    worker_context,
)
from datareach.enrich.stages import DESTINATION_STAGES
from datareach.kb import knowledge_base
from datareach.schema import Destination, arrow_schema


def destinations(n: int, seed: int = 1, *, undated_every: int = 0) -> pa.Table:
    """``n`` destinations before the destination stages: a third the knowledge base's domains,
    a third names under them, a third names it does not know; 1-3 public servers each. With
    ``undated_every`` k, every k-th has no first_seen (the stages judge it at the context's date)."""
    rng = random.Random(seed)
    domains = sorted(knowledge_base().domains)
    schema = arrow_schema(Destination)
    rows: dict[str, list[Any]] = {f.name: [None] * n for f in schema}
    for i in range(n):
        d = domains[(i * 7919) % len(domains)]
        host = d if i % 3 == 0 else f"h{i}.{d}" if i % 3 == 1 else f"h{i}.unknown-{i}.example"
        ips = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
               for _ in range(rng.randint(1, 3))]
        rows["id"][i], rows["host"][i], rows["ips"][i], rows["uids"][i] = f"D{i}", host, ips, [f"C{i}"]
        rows["servers"][i] = json.dumps([{"ip": ip, "ip_scope": None, "country": None, "asn": None, "as_org": None}
                                         for ip in ips])
        rows["first_seen"][i] = None if undated_every and i % undated_every == 0 else "2026-11-01T00:00:00Z"
        rows["cname_chain"][i], rows["inputs"][i], rows["reach"][i] = [], [0], "[]"
        rows["countries"][i], rows["data_types"][i], rows["data_categories"][i] = [], [], []
        rows["bytes_out"][i] = i
    return pa.table([pa.array(rows[f.name], f.type) for f in schema], schema=schema)


def identity(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield from batches


def timed(payload: Any, target: pa.Schema) -> Any:
    """A mapInArrow task that runs the stages (run_stages) and returns, instead of the rows, one
    row per partition: its destinations, the CPU seconds of the stages, those of the worker's
    context (when this task made it), and the worker's process id."""
    import os

    from datareach.engine.spark import _CONTEXTS, run_stages

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fresh = payload.value.key not in _CONTEXTS
        c0 = time.process_time()
        if fresh:
            worker_context(payload.value)
        c1 = time.process_time()
        rows = 0
        for out in run_stages(batches, payload.value, target):
            rows += out.num_rows
        c2 = time.process_time()
        yield pa.RecordBatch.from_pydict({"rows": [rows], "stages_s": [c2 - c1], "context_s": [c1 - c0],
                                          "pid": [os.getpid()]})

    return task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--destinations", default="1000,10000,100000")
    ap.add_argument("--partitions", type=int, default=2)
    args = ap.parse_args()
    sizes = [int(x) for x in args.destinations.split(",")]
    kb = knowledge_base()
    pipeline = Pipeline(destination_stages=DESTINATION_STAGES)

    # an executor worker's one-off cost: the context from the payload (in a fresh state)
    payload = EnrichPayload(kb=pickle.loads(pickle.dumps(kb)), date="2026-12-01")
    t = time.perf_counter()
    worker_context(payload)
    context_s = time.perf_counter() - t
    _CONTEXTS.clear()
    t = time.perf_counter()
    pickle.loads(pickle.dumps(payload))
    unpickle_s = time.perf_counter() - t
    print(f"payload (knowledge base pickled): {payload_size(payload):,} bytes; unpickled in {unpickle_s * 1000:.0f} ms;"
          f" a worker's context made in {context_s * 1000:.0f} ms (geo data, resolver)")

    print("\nin this process (local engine's way), per 1,000 destinations:")
    for n in sizes:
        table = destinations(n)
        ctx = enrich_context(AuditOptions(), kb, prepare(), date="2026-12-01")
        t = time.perf_counter()
        destination_stages(pipeline, table, ctx)
        cold = time.perf_counter() - t
        per_stage = []
        for stage in DESTINATION_STAGES:
            t = time.perf_counter()
            table2 = stage(table, ctx)
            per_stage.append(f"{stage.name} {(time.perf_counter() - t) / n * 1e6:.1f}")
            table = table2
        print(f"  {n:>9,}: cold {cold / n * 1e6:6.1f} ms; warm by stage (ms): {', '.join(per_stage)}")

    t0 = time.perf_counter()
    spark = spark_session("local[2]")
    t1 = time.perf_counter()
    spark.range(10).count()
    t2 = time.perf_counter()
    spark.range(10).repartition(2).mapInArrow(identity, "id long").count()
    t3 = time.perf_counter()
    print(f"\nSpark local[2]: session {t1 - t0:.2f} s, first job {t2 - t1:.2f} s, first Python job {t3 - t2:.2f} s")
    bcast = enrich_payload(spark, kb, date="2026-12-01")
    print(f"on executors (mapInArrow, {args.partitions} partitions), per 1,000 destinations:")
    for n in sizes:
        frame = spark.createDataFrame(destinations(n)).repartition(args.partitions).cache()
        frame.count()
        t = time.perf_counter()
        frame.mapInArrow(identity, frame.schema).write.format("noop").mode("overwrite").save()
        base = time.perf_counter() - t
        runs = []
        for _ in range(2):
            t = time.perf_counter()
            enrich_partitions(frame, bcast).write.format("noop").mode("overwrite").save()
            runs.append(time.perf_counter() - t)
        from pyspark.sql.pandas.types import to_arrow_schema

        from datareach.engine.spark import stage_schema

        target = to_arrow_schema(stage_schema(frame.schema, DESTINATION_STAGES))
        parts = frame.mapInArrow(timed(bcast, target), "rows long, stages_s double, context_s double, pid long"
                                 ).collect()
        cpu = sum(p.stages_s for p in parts)
        print(f"  {n:>9,}: job {runs[0]:.2f} s (then {runs[1]:.2f} s; identity {base:.2f} s); in the workers: "
              f"stages {cpu / n * 1e6:.1f} ms CPU per 1,000, partitions of {n / args.partitions:,.0f}: "
              + ", ".join(f"{p.stages_s:.2f} s" + (f" (+{p.context_s:.2f} s context)" if p.context_s else "")
                          for p in parts))
        frame.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
