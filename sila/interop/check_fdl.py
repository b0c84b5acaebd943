"""Checks our SiLA feature definitions: each validates against the SiLA schema (vendor/xsd), and each
feature's protobuf is what the standard's fdl2proto stylesheet makes of it (no drift).

Usage: check_fdl.py SILA_DIR
"""

import sys
from pathlib import Path

import xmlschema
from lxml import etree


def main() -> int:
    root = Path(sys.argv[1])
    # The installed tester's own schema, when there is one (the vendored copy otherwise).
    try:
        import sila2_interop_communication_tester as tester

        xsd = Path(tester.__file__).parent / "resources/xsd/FeatureDefinition.xsd"
    except ImportError:
        xsd = root / "vendor/xsd/FeatureDefinition.xsd"
    print(f"schema: {xsd}")
    schema = xmlschema.XMLSchema(str(xsd))
    to_proto = etree.XSLT(etree.parse(str(root / "vendor/xslt/fdl2proto.xsl")))
    failed = 0
    for fdl in sorted([*root.glob("features/*.sila.xml"), *root.glob("vendor/fdl/*.sila.xml")]):
        try:
            schema.validate(str(fdl))
            print(f"valid against FeatureDefinition.xsd: {fdl.relative_to(root)}")
        except xmlschema.XMLSchemaValidationError as e:
            print(f"INVALID: {fdl}: {e.reason}")
            failed += 1
        proto = fdl.with_name(fdl.name.replace(".sila.xml", ".proto"))
        if fdl.parent.name == "features":
            made = str(to_proto(etree.parse(str(fdl)))).strip().splitlines()
            kept = [l for l in proto.read_text().strip().splitlines() if not l.startswith("//")]
            if [l for l in made if l.strip()] != [l for l in kept if l.strip()]:
                print(f"DRIFT: {proto.relative_to(root)} is not fdl2proto of {fdl.name}")
                failed += 1
            else:
                print(f"matches fdl2proto: {proto.relative_to(root)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
