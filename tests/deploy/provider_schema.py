"""The google provider's resource schemas, offline, from npm ``@cdktf/provider-google``.

The Terraform binary and the provider plugin (whose ``terraform providers schema``
would give the schema) come from a host that is not reachable here. The CDK for
Terraform package of the provider is generated from that very schema and sits on npm:
each ``lib/<resource>/index.js`` maps every argument and nested block to its Terraform
name (``synthesizeHclAttributes`` and the ``*ToHclTerraform`` functions, with
``isBlock``), and ``index.d.ts`` says which are optional (``?``). This module digests
them into one JSON file:

    {"provider_version": "6.50.0",
     "resource": {"google_storage_bucket": "storageBucket", ...},
     "data": {"google_project": "dataGoogleProject", ...},
     "types": {"storageBucket": {"attrs": {"name": true, "labels": false, ...},
                                  "blocks": {"lifecycle_rule": ["storageBucketLifecycleRule", false], ...}},
               ...}}

(``true``: required). ``python provider_schema.py PACKAGE.tgz OUT.json`` (run by
install_tools.sh).
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
from typing import Any

_MEMBER = re.compile(r"package/lib/([^/]+)/index\.(js|d\.ts)")
_RESOURCE_TYPE = re.compile(r'\n(\w+)\.tfResourceType = "([\w-]+)";')
_FUNC = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{\n(.*?)\n\}\n", re.S | re.M)
_TOP = re.compile(r"    synthesizeHclAttributes\(\) \{\n        const attrs = \{\n(.*?)\n        \};", re.S)
_ENTRY = re.compile(r"^\s+(\w+): \{\n\s+value: (.+?),\n\s+isBlock: (true|false),", re.M)
_BLOCK_FN = re.compile(r"(?<![.\w])([a-z]\w*)ToHclTerraform\b")
_PROP = re.compile(r"(?:struct\.|this\._)(\w+)\)")
_INTERFACE = re.compile(r"^export interface (\w+)(?: extends [\w.]+)? \{\n(.*?)\n\}", re.S | re.M)
_READONLY = re.compile(r"^\s+readonly (\w+)(\?)?:", re.M)
_VERSION = re.compile(r"registry\.terraform\.io/providers/hashicorp/google/([\d.]+)/docs")


def _entries(body: str, optional: dict[str, bool] | None) -> dict[str, Any]:
    node: dict[str, Any] = {"attrs": {}, "blocks": {}}
    for name, value, is_block in _ENTRY.findall(body):
        prop = _PROP.search(value)
        required = bool(optional is not None and prop and optional.get(prop.group(1)) is False)
        if is_block == "true":
            fn = _BLOCK_FN.search(value)
            if fn:
                node["blocks"][name] = [fn.group(1), required]
        else:
            node["attrs"][name] = required
    return node


def digest(tgz: str) -> dict[str, Any]:
    files: dict[str, dict[str, str]] = {}
    with tarfile.open(tgz) as tf:
        for m in tf:
            mm = _MEMBER.fullmatch(m.name)
            if mm:
                f = tf.extractfile(m)
                assert f is not None
                files.setdefault(mm.group(1), {})[mm.group(2)] = f.read().decode()
    out: dict[str, Any] = {"provider_version": None, "resource": {}, "data": {}, "types": {}}
    for f in files.values():
        js, dts = f.get("js"), f.get("d.ts")
        if not js or not dts:
            continue
        m = _RESOURCE_TYPE.search(js)
        if not m:
            continue
        cls, tf_type = m.groups()
        if out["provider_version"] is None and (v := _VERSION.search(js)):
            out["provider_version"] = v.group(1)
        # interface name -> {camelCase property: optional?}
        interfaces = {
            name: {p: bool(q) for p, q in _READONLY.findall(body)} for name, body in _INTERFACE.findall(dts)
        }
        for prefix, body in _FUNC.findall(js):
            out["types"][prefix] = _entries(body, interfaces.get(prefix[0].upper() + prefix[1:]))
        top = _TOP.search(js)
        if not top:
            continue
        key = cls[0].lower() + cls[1:]
        out["types"][key] = _entries(top.group(1), interfaces.get(cls + "Config"))
        out["data" if cls.startswith("DataGoogle") else "resource"][tf_type] = key
    return out


if __name__ == "__main__":
    schema = digest(sys.argv[1])
    if len(schema["resource"]) < 500 or "google_storage_bucket" not in schema["resource"]:
        sys.exit(
            f"{sys.argv[1]}: found only {len(schema['resource'])} resources; the package layout changed?"
        )
    with open(sys.argv[2], "w") as f:
        json.dump(schema, f, sort_keys=True)
    print(f"google provider {schema['provider_version']}: {len(schema['resource'])} resources")
