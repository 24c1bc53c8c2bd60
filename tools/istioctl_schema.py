#!/usr/bin/env python3
"""Writes tests/data/istioctl-<version>-schema.json: the fields istioctl <version> decodes in an
IstioOperator file, and how strictly, for the test in tests/istioctl.rs.

Only Python's standard library and git are used; the tests read the JSON this writes and never
run this script. Every type comes from the sources istioctl is built from, at the versions its
go.mod pins:

* the IstioOperator Go types: istio/istio `operator/pkg/apis/types.go` (Go `encoding/json`
  names: the `json` tag, else the Go field name; anonymous fields flattened);
* the Kubernetes types they hold (`corev1.Affinity`, `corev1.ServiceSpec`, ...):
  kubernetes/api and kubernetes/apimachinery at the `k8s.io/api` and `k8s.io/apimachinery`
  versions of istio's go.mod, parsed from their Go sources the same way;
* `values`: the descriptor of `istio.operator.v1alpha1.Values` compiled into
  `operator/pkg/apis/values_types.pb.go` (the serialized FileDescriptorProto in its
  `rawDesc` constant: proto names and the `json_name`s protoc computed);
* `meshConfig`: `istio.mesh.v1alpha1.MeshConfig` and the messages it reaches, from the
  `*.pb.go` files of istio/api at the commit of istio's go.mod (`istio.io/api`);
* the values subtrees that `validateValues` re-decodes strictly into Kubernetes types
  (`runKube` / `runKubeList` in `operator/pkg/apis/validation/validation.go`), read from that
  file.

Usage (each argument a git directory or clone; the tags and commits are looked up in it):

    python3 tools/istioctl_schema.py --istio-version 1.30.3 \\
        --istio ISTIO_GIT --istio-api ISTIO_API_GIT \\
        --k8s-api KUBERNETES_API_GIT --apimachinery KUBERNETES_APIMACHINERY_GIT \\
        > tests/data/istioctl-1.30.3-schema.json

The repositories are github.com/istio/istio, github.com/istio/api, github.com/kubernetes/api
and github.com/kubernetes/apimachinery.
"""

import argparse
import codecs
import json
import re
import subprocess
import sys

# ---------------------------------------------------------------------------------------------
# git access


class Repo:
    def __init__(self, gitdir, rev):
        self.gitdir = gitdir
        self.rev = rev

    def show(self, path):
        return subprocess.run(
            ["git", "--git-dir", self.gitdir, "show", f"{self.rev}:{path}"],
            check=True,
            capture_output=True,
        ).stdout.decode("utf-8")

    def ls(self, directory):
        out = subprocess.run(
            ["git", "--git-dir", self.gitdir, "ls-tree", "--name-only", f"{self.rev}:{directory}"],
            check=True,
            capture_output=True,
        ).stdout.decode("utf-8")
        return [line for line in out.splitlines() if line]

    def commit(self):
        return subprocess.run(
            ["git", "--git-dir", self.gitdir, "rev-parse", f"{self.rev}^{{commit}}"],
            check=True,
            capture_output=True,
        ).stdout.decode("utf-8").strip()


def gitdir(path):
    """A clone's .git or a bare repository."""
    out = subprocess.run(
        ["git", "-C", path, "rev-parse", "--git-dir"], check=True, capture_output=True
    ).stdout.decode("utf-8").strip()
    if not out.startswith("/"):
        out = f"{path}/{out}"
    return out


# ---------------------------------------------------------------------------------------------
# protobuf descriptors, decoded from the rawDesc constant of a .pb.go file


def raw_descriptor(pb_go):
    """The bytes of `const file_..._rawDesc = "" + "..." + ...` (protoc-gen-go >= 1.36)."""
    m = re.search(r'^const file_\w+_rawDesc = "" \+\n(.*?)\n\n', pb_go, re.S | re.M)
    if not m:
        raise SystemExit("no rawDesc string constant in a .pb.go file")
    out = bytearray()
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)):
        if "\\u" in lit or "\\U" in lit:
            raise SystemExit("unexpected \\u escape in rawDesc")
        out += codecs.escape_decode(lit.encode("utf-8"))[0]
    return bytes(out)


def wire_fields(buf):
    """(field number, wire type, value) of one protobuf message; value is int or bytes."""
    i = 0
    n = len(buf)

    def varint():
        nonlocal i
        shift = 0
        result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    while i < n:
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            yield num, wt, varint()
        elif wt == 1:
            yield num, wt, buf[i : i + 8]
            i += 8
        elif wt == 2:
            length = varint()
            yield num, wt, buf[i : i + length]
            i += length
        elif wt == 5:
            yield num, wt, buf[i : i + 4]
            i += 4
        else:
            raise SystemExit(f"unsupported wire type {wt}")


# FieldDescriptorProto.Type
PB_SCALARS = {
    1: "double",
    2: "float",
    3: "int64",
    4: "uint64",
    5: "int32",
    6: "uint64",  # fixed64
    7: "uint32",  # fixed32
    8: "bool",
    9: "string",
    12: "bytes",
    13: "uint32",
    15: "int32",  # sfixed32
    16: "int64",  # sfixed64
    17: "int32",  # sint32
    18: "int64",  # sint64
}
TYPE_MESSAGE, TYPE_ENUM, TYPE_GROUP = 11, 14, 10
LABEL_REPEATED = 3

# Well-known types as the legacy jsonpb decoder (github.com/golang/protobuf v1.5.4
# jsonpb/decode.go) reads them.
WELL_KNOWN = {
    "google.protobuf.BoolValue": "bool",
    "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "bytes",
    "google.protobuf.Int32Value": "int32",
    "google.protobuf.UInt32Value": "uint32",
    "google.protobuf.Int64Value": "int64",
    "google.protobuf.UInt64Value": "uint64",
    "google.protobuf.FloatValue": "float",
    "google.protobuf.DoubleValue": "double",
    "google.protobuf.Duration": "duration",
    "google.protobuf.Timestamp": "timestamp",
    "google.protobuf.Struct": "struct",
    "google.protobuf.Value": "any",
    "google.protobuf.ListValue": "listValue",
    "google.protobuf.Any": "pbAny",
    "google.protobuf.Empty": "pb:google.protobuf.Empty",
}


class Protos:
    """Messages and enums of the descriptors loaded, by full name."""

    def __init__(self):
        self.messages = {}  # full name -> {"fields": [...], "map": (k, v) or None}
        self.enums = {}  # full name -> [value names]
        self.files = {}  # proto path -> dependencies

    def load(self, raw):
        name, package, deps = "", "", []
        messages, enums = [], []
        for num, _, val in wire_fields(raw):
            if num == 1:
                name = val.decode()
            elif num == 2:
                package = val.decode()
            elif num == 3:
                deps.append(val.decode())
            elif num == 4:
                messages.append(val)
            elif num == 5:
                enums.append(val)
        for m in messages:
            self._message(package, m)
        for e in enums:
            self._enum(package, e)
        self.files[name] = deps
        return deps

    def _enum(self, scope, raw):
        name, values = "", []
        for num, _, val in wire_fields(raw):
            if num == 1:
                name = val.decode()
            elif num == 2:
                for vnum, _, vval in wire_fields(val):
                    if vnum == 1:
                        values.append(vval.decode())
        self.enums[f"{scope}.{name}"] = values

    def _message(self, scope, raw):
        name, fields, nested, enums, map_entry = "", [], [], [], False
        for num, _, val in wire_fields(raw):
            if num == 1:
                name = val.decode()
            elif num == 2:
                fields.append(val)
            elif num == 3:
                nested.append(val)
            elif num == 4:
                enums.append(val)
            elif num == 7:
                for onum, _, oval in wire_fields(val):
                    if onum == 7 and oval:
                        map_entry = True
        full = f"{scope}.{name}"
        parsed = []
        for f in fields:
            fd = {"label": 1}
            for num, _, val in wire_fields(f):
                if num == 1:
                    fd["name"] = val.decode()
                elif num == 4:
                    fd["label"] = val
                elif num == 5:
                    fd["type"] = val
                elif num == 6:
                    fd["typeName"] = val.decode().lstrip(".")
                elif num == 10:
                    fd["jsonName"] = val.decode()
            parsed.append(fd)
        self.messages[full] = {"fields": parsed, "mapEntry": map_entry}
        for n in nested:
            self._message(full, n)
        for e in enums:
            self._enum(full, e)

    def type_ref(self, fd):
        t = fd["type"]
        if t in PB_SCALARS:
            ref = PB_SCALARS[t]
        elif t == TYPE_ENUM:
            ref = f"enum:{fd['typeName']}"
        elif t in (TYPE_MESSAGE, TYPE_GROUP):
            tn = fd["typeName"]
            msg = self.messages.get(tn)
            if msg is not None and msg["mapEntry"]:
                key, value = msg["fields"]
                return {"map": self.type_ref(value), "key": PB_SCALARS.get(key["type"], "string")}
            if tn == "istio.operator.v1alpha1.IntOrString":
                # Custom UnmarshalJSONPB (operator/pkg/apis/value_types_json.go): a JSON string, or
                # a number read as an int32.
                ref = "intOrString"
            else:
                ref = WELL_KNOWN.get(tn, f"pb:{tn}")
        else:
            raise SystemExit(f"unsupported field type {t}")
        if fd["label"] == LABEL_REPEATED:
            return {"list": ref}
        return ref

    def reachable(self, roots):
        """Full names of the messages reachable from `roots`, not counting well-known types."""
        seen, stack = [], list(roots)
        while stack:
            name = stack.pop()
            if name in seen or name in WELL_KNOWN:
                continue
            if name not in self.messages:
                raise SystemExit(f"message {name} not loaded")
            seen.append(name)
            for fd in self.messages[name]["fields"]:
                if fd["type"] in (TYPE_MESSAGE, TYPE_GROUP):
                    stack.append(fd["typeName"])
        return sorted(seen)

    def emit(self, names, types, enums):
        for name in names:
            msg = self.messages[name]
            if msg["mapEntry"]:
                continue
            fields = []
            for fd in msg["fields"]:
                entry = {"name": fd["name"], "type": self.type_ref(fd)}
                json_name = fd.get("jsonName") or lower_camel(fd["name"])
                if json_name != fd["name"]:
                    entry["json"] = json_name
                fields.append(entry)
                for ref in refs_of(entry["type"]):
                    if ref.startswith("enum:"):
                        enums[ref[5:]] = self.enums[ref[5:]]
            types[f"pb:{name}"] = {"decoder": "jsonpb", "fields": fields}


def lower_camel(name):
    """protoc's default json_name."""
    out, upper = [], False
    for c in name:
        if c == "_":
            upper = True
        elif upper:
            out.append(c.upper())
            upper = False
        else:
            out.append(c)
    return "".join(out)


def go_camel(name):
    """protoc-gen-go's Go name of a proto field, as getters use it."""
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[_-]", name) if p)


def refs_of(ref):
    if isinstance(ref, dict):
        inner = ref.get("list") or ref.get("map")
        return refs_of(inner)
    return [ref]


# ---------------------------------------------------------------------------------------------
# Go types, parsed from their sources


GO_BASIC = {
    "string": "string",
    "bool": "bool",
    "int": "int64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "uint": "uint64",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "float32": "float",
    "float64": "double",
    "any": "any",
    "interface{}": "any",
    "byte": "uint8",
}

# Types with their own UnmarshalJSON (or UnmarshalText) and how they read JSON.
GO_CUSTOM = {
    # apimachinery pkg/api/resource/quantity.go: a string, or a bare number.
    "k8s.io/apimachinery/pkg/api/resource.Quantity": "quantity",
    # apimachinery pkg/util/intstr/intstr.go: a string, or a number read as an int32.
    "k8s.io/apimachinery/pkg/util/intstr.IntOrString": "intOrString",
    # apimachinery pkg/apis/meta/v1/time.go, micro_time.go: an RFC 3339 string or null.
    "k8s.io/apimachinery/pkg/apis/meta/v1.Time": "time",
    "k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime": "time",
    # apimachinery pkg/apis/meta/v1/duration.go: a string for time.ParseDuration.
    "k8s.io/apimachinery/pkg/apis/meta/v1.Duration": "duration",
    # apimachinery pkg/apis/meta/v1/types.go: any JSON.
    "k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1": "any",
    "k8s.io/apimachinery/pkg/runtime.RawExtension": "any",
    # operator/pkg/apis/types.go: BoolValue.UnmarshalJSON reads a JSON bool.
    "istio.io/istio/operator/pkg/apis.BoolValue": "bool",
    # encoding/json.RawMessage: any JSON, not looked into.
    "encoding/json.RawMessage": "any",
}


class GoPackages:
    def __init__(self, locate):
        self.locate = locate  # import path -> (Repo, directory)
        self.packages = {}  # import path -> {"types": {name: (kind, body, imports)}, "custom": set}

    def package(self, path):
        if path in self.packages:
            return self.packages[path]
        repo, directory = self.locate(path)
        types, custom = {}, set()
        for fname in repo.ls(directory):
            if not fname.endswith(".go") or fname.endswith("_test.go"):
                continue
            src = repo.show(f"{directory}/{fname}")
            imports = parse_imports(src)
            for m in re.finditer(r"^func \(\w+ \*?(\w+)\) Unmarshal(JSON|Text)\(", src, re.M):
                custom.add(m.group(1))
            for m in re.finditer(r"^type (\w+) struct \{\n", src, re.M):
                body = struct_body(src, m.end())
                types[m.group(1)] = ("struct", body, imports)
            for m in re.finditer(r"^type (\w+) (?:= )?([^\s{][^\n]*?)\s*(?://[^\n]*)?$", src, re.M):
                if m.group(2).startswith("struct") or m.group(2).startswith("interface"):
                    continue
                types[m.group(1)] = ("alias", m.group(2), imports)
            for m in re.finditer(r"^type (\w+) interface\b", src, re.M):
                types[m.group(1)] = ("interface", "", imports)
        self.packages[path] = {"types": types, "custom": custom}
        return self.packages[path]


def parse_imports(src):
    imports = {}
    block = re.search(r"^import \((.*?)^\)", src, re.S | re.M)
    lines = block.group(1).splitlines() if block else []
    lines += [m.group(1) for m in re.finditer(r"^import (.*)$", src, re.M) if "(" not in m.group(1)]
    for line in lines:
        m = re.match(r'\s*(\w+\s+)?"([^"]+)"', line)
        if not m:
            continue
        path = m.group(2)
        alias = (m.group(1) or "").strip() or path.rsplit("/", 1)[-1]
        imports[alias] = path
    return imports


def struct_body(src, start):
    depth, i = 1, start
    while depth:
        c = src[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "`":
            i = src.index("`", i + 1)
        elif c == "/" and src[i + 1] == "/":
            i = src.index("\n", i)
        i += 1
    return src[start : i - 1]


def go_fields(body):
    """(Go name or None when embedded, Go type, json tag or None) of a struct body."""
    out = []
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        tag = None
        m = re.search(r"`([^`]*)`", line)
        if m:
            t = re.search(r'json:"([^"]*)"', m.group(1))
            tag = t.group(1) if t else None
            line = line[: m.start()].strip()
        line = line.split("//")[0].strip()
        parts = line.split(None, 1)
        if len(parts) == 1:
            out.append((None, parts[0], tag))
        else:
            for name in parts[0].rstrip(",").split(","):
                out.append((name.strip(), parts[1].strip(), tag))
    return out


class GoTypes:
    def __init__(self, packages):
        self.packages = packages
        self.types = {}

    def resolve_name(self, pkg, name, imports):
        """(import path, type name) of `name` written in package `pkg`."""
        if "." in name:
            alias, tname = name.split(".", 1)
            return imports[alias], tname
        return pkg, name

    def ref(self, pkg, gotype, imports):
        """The type reference of a Go type expression written in package `pkg`."""
        gotype = gotype.strip()
        if gotype.startswith("*"):
            return self.ref(pkg, gotype[1:], imports)
        if gotype == "[]byte":
            return "bytes"
        if gotype.startswith("[]"):
            return {"list": self.ref(pkg, gotype[2:], imports)}
        if gotype.startswith("map["):
            depth, i = 1, 4
            while depth:
                depth += {"[": 1, "]": -1}.get(gotype[i], 0)
                i += 1
            return {"map": self.ref(pkg, gotype[i:], imports)}
        if gotype in GO_BASIC:
            return GO_BASIC[gotype]
        ipath, tname = self.resolve_name(pkg, gotype, imports)
        full = f"{ipath}.{tname}"
        if full in GO_CUSTOM:
            return GO_CUSTOM[full]
        if ipath == "encoding/json":
            raise SystemExit(f"unsupported {full}")
        package = self.packages.package(ipath)
        if tname in package["custom"]:
            raise SystemExit(f"{full} has its own UnmarshalJSON: add it to GO_CUSTOM")
        kind, body, timports = package["types"][tname]
        if kind == "alias":
            return self.ref(ipath, body, timports)
        if kind == "interface":
            return "any"
        key = f"go:{full}"
        if key not in self.types:
            self.types[key] = None  # recursion guard
            self.types[key] = {"decoder": "go", "fields": self.struct_fields(ipath, body, timports)}
        return key

    def struct_fields(self, pkg, body, imports):
        """encoding/json's fields of a struct: tagged or exported names; anonymous structs
        without a tag name are flattened, their fields coming after (and never replacing) the
        outer ones."""
        own, embedded = {}, []
        for name, gotype, tag in go_fields(body):
            tag_name, _, _ = (tag or "").partition(",")
            if tag_name == "-" and tag == "-":
                continue
            if name is None:
                tname = gotype.lstrip("*")
                if tag_name:
                    own[tag_name] = self.ref(pkg, gotype, imports)
                    continue
                ipath, short = self.resolve_name(pkg, tname, imports)
                if not short[:1].isupper():
                    continue
                package = self.packages.package(ipath)
                kind, ebody, eimports = package["types"][short]
                if kind != "struct":
                    raise SystemExit(f"embedded non-struct {tname}")
                embedded.append(self.struct_fields(ipath, ebody, eimports))
                continue
            if not name[:1].isupper():
                continue
            own[tag_name or name] = self.ref(pkg, gotype, imports)
        for fields in embedded:
            for k, v in fields.items():
                own.setdefault(k, v)
        return own


# ---------------------------------------------------------------------------------------------


def go_mod_versions(go_mod):
    versions = {}
    for m in re.finditer(r"^\s*(\S+) (v\S+)", go_mod, re.M):
        versions[m.group(1)] = m.group(2)
    return versions


def kubernetes_checks(validation_go, protos):
    """The `runKube` / `runKubeList` calls of validateValues: values subtrees (proto field
    names from the root) decoded again, strictly, into a Kubernetes type."""
    checks = []
    pattern = r"runKube(List)?\(\s*values\.((?:Get\w+\(\)\.?)+),\s*&(\w+)\.(\w+)\{\},\s*\"([^\"]+)\"\)"
    for m in re.finditer(pattern, validation_go):
        is_list, getters, alias, tname, hint = m.groups()
        message = "istio.operator.v1alpha1.Values"
        path = []
        for getter in re.findall(r"Get(\w+)\(\)", getters):
            fd = next(f for f in protos.messages[message]["fields"] if go_camel(f["name"]) == getter)
            path.append(fd["name"])
            message = fd.get("typeName", "")
        checks.append(
            {
                "path": path,
                "alias": alias,
                "type": tname,
                "list": bool(is_list),
                "hint": hint,
            }
        )
    return checks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--istio-version", required=True)
    ap.add_argument("--istio", required=True)
    ap.add_argument("--istio-api", required=True)
    ap.add_argument("--k8s-api", required=True)
    ap.add_argument("--apimachinery", required=True)
    args = ap.parse_args()

    istio = Repo(gitdir(args.istio), args.istio_version)
    versions = go_mod_versions(istio.show("go.mod"))
    api_rev = versions["istio.io/api"].rsplit("-", 1)[-1]
    istio_api = Repo(gitdir(args.istio_api), api_rev)
    k8s_api = Repo(gitdir(args.k8s_api), versions["k8s.io/api"])
    machinery = Repo(gitdir(args.apimachinery), versions["k8s.io/apimachinery"])

    # -- protos
    protos = Protos()
    protos.load(raw_descriptor(istio.show("operator/pkg/apis/values_types.pb.go")))
    pending = ["mesh/v1alpha1/config.proto"]
    while pending:
        proto = pending.pop()
        if proto in protos.files or proto.startswith("google/"):
            continue
        deps = protos.load(raw_descriptor(istio_api.show(proto[: -len(".proto")] + ".pb.go")))
        pending.extend(deps)

    types, enums = {}, {}
    values_root = "istio.operator.v1alpha1.Values"
    mesh_root = "istio.mesh.v1alpha1.MeshConfig"
    protos.emit(protos.reachable([values_root, mesh_root]), types, enums)

    # -- Go types
    def locate(path):
        if path.startswith("k8s.io/api/"):
            return k8s_api, path[len("k8s.io/api/") :]
        if path.startswith("k8s.io/apimachinery/"):
            return machinery, path[len("k8s.io/apimachinery/") :]
        if path.startswith("istio.io/istio/"):
            return istio, path[len("istio.io/istio/") :]
        raise SystemExit(f"no source for Go package {path}")

    go = GoTypes(GoPackages(locate))
    iop_pkg = "istio.io/istio/operator/pkg/apis"
    iop_root = go.ref(iop_pkg, "IstioOperator", {})

    validation_go = istio.show("operator/pkg/apis/validation/validation.go")
    vimports = parse_imports(validation_go)
    checks = []
    for check in kubernetes_checks(validation_go, protos):
        ref = go.ref("", f"{check['alias']}.{check['type']}", vimports)
        checks.append({"path": check["path"], "list": check["list"], "type": ref, "hint": check["hint"]})

    types.update(go.types)
    out = {
        "about": (
            "Generated by tools/istioctl_schema.py from the sources of istioctl "
            f"{args.istio_version}; read by tests/istioctl.rs. Do not edit."
        ),
        "sources": {
            "istio/istio": f"{args.istio_version} ({istio.commit()})",
            "istio/api": istio_api.commit(),
            "kubernetes/api": versions["k8s.io/api"],
            "kubernetes/apimachinery": versions["k8s.io/apimachinery"],
        },
        "roots": {
            "istioOperator": iop_root,
            "values": f"pb:{values_root}",
            "meshConfig": f"pb:{mesh_root}",
        },
        "kubernetesChecks": checks,
        "enums": dict(sorted(enums.items())),
        "types": dict(sorted(types.items())),
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
