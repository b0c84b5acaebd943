"""RunCampaign through the Python `sila2` client (the SiLA consortium's reference library).

Usage: run_campaign.py HOST PORT CA_PEM|--insecure LINES SEED BUDGET

Connects to a cellos gateway's SiLA 2 server, checks the server's identity and the DoseFinding feature
(its definition, a validation error naming the parameter at fault), runs a campaign, collects its
intermediate responses while it runs, follows the workcell state, and prints one JSON object: the chosen
doses, the intermediate responses, the states seen and the command's final status.
"""

import json
import sys
import time

from sila2.client import SilaClient
from sila2.framework import ValidationError


def main() -> int:
    host, port, ca, lines, seed, budget = sys.argv[1:7]
    if ca == "--insecure":
        client = SilaClient(host, int(port), insecure=True)
    else:
        with open(ca, "rb") as f:
            client = SilaClient(host, int(port), root_certs=f.read())
    out = {
        "server_type": client.SiLAService.ServerType.get(),
        "server_uuid": str(client.SiLAService.ServerUUID.get()),
        "features": sorted(client.SiLAService.ImplementedFeatures.get()),
    }
    try:
        client.DoseFinding.RunCampaign(CellLines=["HAL9000"], Seed=1, BudgetWells=24)
        out["validation"] = None
    except ValidationError as e:
        out["validation"] = str(getattr(e.parameter_fully_qualified_identifier, "fully_qualified_identifier", e.parameter_fully_qualified_identifier))
    states = []
    state_sub = client.DoseFinding.WorkcellState.subscribe()
    state_sub.add_callback(lambda s: states.append(s))
    cmd = client.DoseFinding.RunCampaign(CellLines=lines.split(","), Seed=int(seed), BudgetWells=int(budget))
    progress = []
    sub = cmd.subscribe_to_intermediate_responses()
    for item in sub:
        p = item.Progress
        progress.append({"line": p.CellLine, "iteration": p.Iteration, "wells": p.Wells})
    deadline = time.time() + 300
    while not cmd.done and time.time() < deadline:
        time.sleep(0.05)
    result = cmd.get_responses()
    time.sleep(0.3)
    state_sub.cancel()
    out["status"] = str(cmd.status)
    out["progress"] = progress
    out["states"] = states
    out["execution_uuid"] = str(cmd.execution_uuid)
    out["doses"] = [
        {"line": d.CellLine, "dose_um": d.Dose, "lo_um": d.Lower, "hi_um": d.Upper, "wells": d.Wells}
        for d in result.ChosenDoses
    ]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
