"""Reference: the same scheduling instance solved by Google OR-Tools CP-SAT (what the legacy platform used).

Reads a `cellos schedule solve` JSON problem (makespan objective), builds the textbook CP-SAT model
(an interval per task, precedences, one cumulative per resource) and prints
`<file> <status> <makespan> <bound> <ms>`. Optional: needs `pip install ortools`; not part of the tests.

    cargo run --release -p cellos-host --example schedule_bench 2 --dump /tmp/inst
    python3 host-tools/examples/cpsat_reference.py /tmp/inst/bench-20-2.json [SECONDS] [WORKERS]
"""

import json
import sys
import time

from ortools.sat.python import cp_model


def main():
    p = json.load(open(sys.argv[1]))
    limit = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    m = cp_model.CpModel()
    horizon = p.get("horizon_min", 7 * 24 * 60)
    start, end, interval = {}, {}, {}
    for t in p["tasks"]:
        d = t["duration_min"]
        s = m.NewIntVar(t.get("release_min", 0), horizon - d, t["id"])
        start[t["id"]], end[t["id"]] = s, s + d
        interval[t["id"]] = m.NewIntervalVar(s, d, s + d, "i" + t["id"])
        if t.get("due_min") is not None:
            m.Add(s + d <= t["due_min"])
    for t in p["tasks"]:
        for q in t.get("predecessors", []):
            m.Add(start[t["id"]] >= end[q])
    for r in p["resources"]:
        if r.get("windows"):
            sys.exit("windows are not modelled here")
        intervals, demands = [], []
        for t in p["tasks"]:
            for n in t.get("resources", []):
                rid, demand = (n, 1) if isinstance(n, str) else (n["id"], n["demand"])
                if rid == r["id"]:
                    intervals.append(interval[t["id"]])
                    demands.append(demand)
        m.AddCumulative(intervals, demands, r["capacity"])
    makespan = m.NewIntVar(0, horizon, "makespan")
    m.AddMaxEquality(makespan, [end[t["id"]] for t in p["tasks"]])
    m.Minimize(makespan)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit
    solver.parameters.num_workers = workers
    t0 = time.time()
    status = solver.Solve(m)
    ms = (time.time() - t0) * 1000
    print(f"{sys.argv[1]} {solver.StatusName(status)} {solver.ObjectiveValue():.0f} {solver.BestObjectiveBound():.0f} {ms:.0f}")


if __name__ == "__main__":
    main()
