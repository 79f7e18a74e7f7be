#!/usr/bin/env python3
"""Copy the validated example events of the Realtime API catalogue into the protocol crate.

Run once by a developer who has the catalogue (../shared/protocol); the crate then owns its fixtures
and nothing at build or test time reads the catalogue. Each example goes to
crates/protocol/fixtures/<ga|beta>/<client|server>/<type>.json; the spec's own example goes beside it
as <type>.spec.json when it is present and validated.
"""
import json
import pathlib
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/protocol")
dst = pathlib.Path(__file__).resolve().parent.parent / "crates/protocol/fixtures"
for version in ("ga", "beta"):
    catalogue = json.loads((src / f"events-{version}.json").read_text())
    for side in ("client", "server"):
        out = dst / version / side
        out.mkdir(parents=True, exist_ok=True)
        for entry in catalogue[side]:
            name = entry["type"]
            (out / f"{name}.json").write_text(json.dumps(entry["example"], indent=2) + "\n")
            if entry.get("spec_example") and entry.get("spec_example_validated"):
                (out / f"{name}.spec.json").write_text(json.dumps(entry["spec_example"], indent=2) + "\n")
examples = json.loads((src / "session-update-examples.json").read_text())
out = dst / "session-update"
out.mkdir(parents=True, exist_ok=True)
for name, entry in examples.items():
    if entry.get("validated"):
        (out / f"{name}.json").write_text(json.dumps(entry["event"], indent=2) + "\n")
observed = json.loads((src / "azure-observed-beta.json").read_text())
out = dst / "azure-observed"
out.mkdir(parents=True, exist_ok=True)
for i, ev in enumerate(observed["events"]):
    (out / f"{i:02}-{ev['type']}.json").write_text(json.dumps(ev, indent=2) + "\n")
# The preview shapes the translation back to preview is held to (crates/protocol/tests/translate.rs):
# each object's field names, from the beta components.
components = json.loads((src / "components-beta.json").read_text())
shapes = {
    name: sorted(components[name]["fields"].keys())
    for name in ("RealtimeSession", "RealtimeResponse", "RealtimeConversationItem", "RealtimeResponseCreateParams")
}
(dst / "beta" / "shapes.json").write_text(json.dumps(shapes, indent=2) + "\n")
