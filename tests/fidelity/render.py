#!/usr/bin/env python3
"""Renders every Helm install line meshc wrote with Istio's real charts.

    python3 tests/fidelity/render.py OUT_DIR CHARTS_DIR

OUT_DIR is a `meshc build` output (one directory per cluster); CHARTS_DIR holds Istio's charts
laid out as in Istio's `manifests/charts/` (tests/data/charts-1.30.3). For each
`<cluster>/install/helm/*.values.yaml`, the first line is the install command meshc writes
(`# helm upgrade --install RELEASE istio/CHART -n NS --version V -f FILE`). This script runs
that command offline, the way `helm template --is-upgrade=false` would, through Helm's own Go
SDK (the `helm-python-sdk` package, module `helm_python`):

- the values are read by Helm's YAML reader and rendered with the release name and namespace
  of the command (CRDs included: Istio's base chart renders them as templates);
- the merged values are validated against the chart's `values.schema.json`, if it has one;
- each value the file sets is changed in turn (and then removed) and the chart rendered
  again: a key whose change alters no rendered object is reported as unread. This is an
  observation of the templates, not a proof, so the caller decides which reports are known
  and fine. The debugging ConfigMap istiod writes with every value in it (`values`) is not
  counted as reading anything, and values istiod only forwards to its sidecar injector count
  as read when an injection template (istiod's `files/*.yaml`) refers to them.

One JSON document goes to stdout:

    {"charts": CHARTS_DIR, "istio_version": "1.30.3", "files": [
       {"cluster", "file",
        "command": {"argv", "release", "chart", "chart_dir", "namespace", "version",
                    "values_files", "sets", "repo", "version_admits_charts",
                    "version_same_minor"},
        "values", "error", "objects", "schema_errors",
        "unread_keys": [{"key", "path", "value", "references"}]}]}

A file that cannot be rendered (a bad command line, an unknown chart, a template failure) has
its message in `error`; the exit status is non-zero only when the script itself cannot run.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

try:
    import helm_python as helm
except ImportError:
    print("helm-python-sdk not installed: pip install helm-python-sdk", file=sys.stderr)
    sys.exit(3)
import jsonschema
import yaml

# The chart named in an install line (`istio/<name>` or `oci://.../<name>`) and where it is
# in Istio's `manifests/charts/`.
CHART_DIRS = {
    "base": "base",
    "istiod": "istio-control/istio-discovery",
    "gateway": "gateway",
    "cni": "istio-cni",
    "ztunnel": "ztunnel",
}

# Rendered templates that copy every value and are read by nothing: istiod's `values`
# ConfigMap says "modifying these values has no effect".
DUMPS_EVERY_VALUE = {"templates/configmap-values.yaml"}

# istiod's sidecar injector ConfigMap: its `values` entry is read at run time by the
# injection templates under `files/`, not by anything Helm renders.
INJECTOR_TEMPLATE = "templates/istiod-injector-configmap.yaml"

PROBE = "meshc-fidelity-probe"

# libyaml's loader when PyYAML has it: the base chart renders megabytes of CRDs.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="a meshc build output directory")
    parser.add_argument("charts", type=Path, help="Istio's charts (manifests/charts layout)")
    parser.add_argument(
        "--istio-version",
        help="the Istio release the charts are from (default: from a CHARTS_DIR named charts-X.Y.Z)",
    )
    parser.add_argument(
        "--no-probe", action="store_true", help="skip the search for unread values (faster)"
    )
    args = parser.parse_args()
    if not args.out.is_dir():
        print(f"{args.out}: not a directory", file=sys.stderr)
        return 2
    if not args.charts.is_dir():
        print(f"{args.charts}: not a directory", file=sys.stderr)
        return 2

    istio_version = args.istio_version
    if istio_version is None:
        named = re.fullmatch(r"charts-(\d+\.\d+\.\d+)", args.charts.resolve().name)
        istio_version = named.group(1) if named else None

    charts = Charts(args.charts)
    files = sorted(args.out.glob("*/install/helm/*.values.yaml"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda f: report(f, args.out, charts, not args.no_probe), files))
    for entry in reports:
        command = entry["command"]
        if command is not None:
            command["version_admits_charts"] = admits(command.get("version"), istio_version)
            command["version_same_minor"] = same_minor(command.get("version"), istio_version)
    # json.dumps, not json.dump: only the former uses the C encoder (the CRDs are megabytes).
    document = {"charts": str(args.charts), "istio_version": istio_version, "files": reports}
    sys.stdout.write(json.dumps(document) + "\n")
    return 0


def light(directory: Path) -> Any:
    """The chart with only the first CRD of `files/crd-all.gen.yaml`, or None if it has none.

    Rendering Istio's base chart is mostly rendering its CRDs, each through the same template
    lines, so the probes for unread values render this copy: the values read are the same
    (except a `base.excludedCRDs` entry naming a later CRD, which meshc does not write).
    """
    crds = directory / "files" / "crd-all.gen.yaml"
    if not crds.is_file():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        copy_dir = Path(scratch) / directory.name
        shutil.copytree(directory, copy_dir)
        first = crds.read_text(encoding="utf-8").split("\n---\n")[0]
        (copy_dir / "files" / "crd-all.gen.yaml").write_text(first, encoding="utf-8")
        return helm.Chart.load(copy_dir)  # read whole into memory: the copy may go


class Charts:
    """Loaded charts and what their templates refer to, by chart name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loaded: dict[str, Any] = {}
        self.probed: dict[str, Any] = {}
        self.references: dict[str, list[tuple[str, int, Path_, str]]] = {}
        self.injection_references: dict[str, list[Path_]] = {}
        for name, rel in CHART_DIRS.items():
            directory = root / rel
            if not (directory / "Chart.yaml").is_file():
                continue
            self.loaded[name] = helm.Chart.load(directory)
            self.probed[name] = light(directory) or self.loaded[name]
            self.references[name] = [
                ref
                for source in sorted((directory / "templates").glob("*"))
                if source.name != "NOTES.txt"
                for ref in references(source, f"{rel}/templates/{source.name}")
            ]
            self.injection_references[name] = [
                path
                for source in sorted((directory / "files").glob("*.yaml"))
                if not source.name.startswith("profile-")
                for (_, _, path, _) in references(source, source.name)
                if path
            ]


VALUES_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
INDEX_REF = re.compile(r'index\s+\(?\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\)?((?:\s+"[^"]*")+)')


def references(source: Path, shown: str) -> list[tuple[str, int, Path_, str]]:
    """Every `.Values.a.b` / `index .Values "a" "b"` in a template: (file, line, path, text)."""
    found = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if re.match(r"\s*\{\{-?\s*/\*", line):
            continue  # a template comment
        for match in INDEX_REF.finditer(line):
            dotted = [p for p in match.group(1).split(".") if p]
            keys = re.findall(r'"([^"]*)"', match.group(2))
            found.append((shown, number, tuple(dotted + keys), line.strip()))
        for match in VALUES_REF.finditer(line):
            found.append(
                (shown, number, tuple(p for p in match.group(1).split(".") if p), line.strip())
            )
    return found


def related(a: Path_, b: Path_) -> bool:
    """One path is a prefix of the other: reading either reads (part of) the other."""
    n = min(len(a), len(b))
    return tuple(a[:n]) == tuple(b[:n])


def report(values_file: Path, out: Path, charts: Charts, probe: bool) -> dict[str, Any]:
    cluster_dir = values_file.parent.parent.parent
    entry: dict[str, Any] = {
        "cluster": cluster_dir.name,
        "file": str(values_file.relative_to(out)),
        "command": None,
        "values": None,
        "error": None,
        "objects": [],
        "schema_errors": [],
        "unread_keys": [],
    }
    try:
        first = values_file.read_text(encoding="utf-8").split("\n", 1)[0]
        command = parse_command(first)
        entry["command"] = command
        chart_name = command["chart"].rstrip("/").rsplit("/", 1)[-1]
        if chart_name not in CHART_DIRS:
            raise Failure(f"unknown chart {command['chart']!r} (known: {', '.join(CHART_DIRS)})")
        if chart_name not in charts.loaded:
            raise Failure(f"chart {chart_name} is not under {charts.root}")
        command["chart_dir"] = CHART_DIRS[chart_name]
        if not command["values_files"]:
            raise Failure("the command passes no values file (-f)")
        values: dict[str, Any] = {}
        for rel in command["values_files"]:
            path = cluster_dir / rel
            if not path.is_file():
                raise Failure(f"-f {rel}: no such file in {cluster_dir.name}/")
            values = merge(values, helm.values_from_yaml(path.read_text(encoding="utf-8")))
        named = [(cluster_dir / rel).resolve() for rel in command["values_files"]]
        if values_file.resolve() not in named:
            raise Failure(f"the command in {values_file.name} does not pass {values_file.name}")
        entry["values"] = values
    except (Failure, ValueError, helm.HelmError) as e:
        entry["error"] = str(e)
        if entry["command"] is None:
            try:
                entry["command"] = {"argv": shlex.split(first.lstrip("#"))}
            except ValueError:
                pass
        return entry

    chart = charts.loaded[chart_name]
    schema = chart.schema
    if schema is not None:
        entry["schema_errors"] = schema_errors(chart, schema, values)

    def render(v: dict[str, Any], chart: Any = chart) -> dict[str, str]:
        manifests = chart.render(
            v,
            name=command["release"],
            namespace=command["namespace"],
            is_install=True,
            is_upgrade=False,
        )
        return {
            name.split("/", 1)[1]: text
            for name, text in manifests.items()
            if not name.endswith("NOTES.txt")
        }

    try:
        baseline = render(values)
    except helm.HelmError as e:
        entry["error"] = f"render: {e}"
        return entry
    try:
        entry["objects"] = [
            doc
            for name in sorted(baseline)
            for doc in yaml.load_all(baseline[name], Loader=LOADER)
            if isinstance(doc, dict)
        ]
    except yaml.YAMLError as e:
        entry["error"] = f"rendered YAML does not parse: {e}"
        return entry

    if probe:
        probed_chart = charts.probed[chart_name]
        if probed_chart is not chart:
            baseline = render(values, probed_chart)

        def render_probe(v: dict[str, Any]) -> dict[str, str]:
            return render(v, probed_chart)

        for path, value in leaves(values):
            forwarded = charts.injection_references[chart_name]
            if is_read(render_probe, baseline, values, path, forwarded):
                continue
            entry["unread_keys"].append(
                {
                    "key": show(path),
                    "path": list(path),
                    "value": value,
                    "references": [
                        f"{file}:{line}: {text}"
                        for (file, line, ref, text) in charts.references[chart_name]
                        if tuple(ref[: len(path)]) == path
                    ],
                }
            )
    return entry


class Failure(Exception):
    pass


SETS = ("--set", "--set-string", "--set-file")


def parse_command(line: str) -> dict[str, Any]:
    """The install line meshc writes as the values file's first line, as a dict."""
    if not line.startswith("#"):
        raise Failure(f"the first line is not a comment with the install command: {line!r}")
    argv = shlex.split(line[1:])
    if argv[:3] == ["helm", "upgrade", "--install"]:
        rest = argv[3:]
    elif argv[:2] == ["helm", "install"]:
        rest = argv[2:]
    else:
        raise Failure(f"not a helm install command: {line!r}")
    command: dict[str, Any] = {
        "argv": argv,
        "release": None,
        "chart": None,
        "chart_dir": None,
        "namespace": "default",
        "version": None,
        "values_files": [],
        # `--set-string`/`--set-file`/`--set` pairs. meshc passes only Solo's license this way
        # (`license.value`, read by Solo's istiod chart, not by the upstream charts rendered
        # here; its value is a shell substitution or a file on the installing machine), so
        # they are recorded for the caller to check, not rendered.
        "sets": [],
        "repo": None,
    }
    positional = []
    takes_value = {"-n": "namespace", "--namespace": "namespace", "--version": "version"}
    i = 0
    while i < len(rest):
        arg = rest[i]
        flag, eq, inline = arg.partition("=")
        if flag in takes_value or flag in ("-f", "--values", "--repo") or flag in SETS:
            if eq:
                value = inline
            else:
                i += 1
                if i == len(rest):
                    raise Failure(f"{arg} without a value")
                value = rest[i]
            if flag in ("-f", "--values"):
                command["values_files"].extend(value.split(","))
            elif flag == "--repo":
                command["repo"] = value
            elif flag in SETS:
                key, _, val = value.partition("=")
                command["sets"].append({"flag": flag, "key": key, "value": val})
            else:
                command[takes_value[flag]] = value
        elif arg in ("--create-namespace", "--wait", "--atomic"):
            pass
        elif arg.startswith("-"):
            raise Failure(f"option {arg} is not understood by this renderer")
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 2:
        raise Failure(f"expected a release name and a chart, got {positional}")
    command["release"], command["chart"] = positional
    helm.validate_release_name(command["release"])
    return command


def admits(constraint: str | None, version: str | None) -> bool | None:
    """Whether a `--version` constraint of the forms meshc writes (`~1.30.0`, `^1.30.0`,
    `1.30.3`, `1.30.x`; a suffix such as Solo's `1.30.3-solo` is ignored) admits the charts'
    version; None when either is unknown."""
    if constraint is None or version is None:
        return None
    have = tuple(int(p) for p in version.split("."))
    match = re.fullmatch(
        r"\s*([~^=]?)v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-[0-9A-Za-z.-]+)?\s*",
        constraint,
    )
    if not match:
        return None
    op, parts = match.group(1), [p for p in match.groups()[1:] if p is not None]
    fixed = [int(p) for p in parts if p.isdigit()]
    low = tuple(fixed + [0] * (3 - len(fixed)))
    wildcard = len(fixed) < len(parts) or len(parts) < 3
    if op == "~":
        high = (low[0] + 1, 0, 0) if len(parts) == 1 else (low[0], low[1] + 1, 0)
    elif op == "^":
        high = (low[0] + 1, 0, 0) if low[0] > 0 else (0, low[1] + 1, 0)
    elif wildcard:
        high = (low[0] + 1, 0, 0) if len(fixed) == 1 else (low[0], low[1] + 1, 0)
    else:
        return have == low
    return low <= have < high


def same_minor(constraint: str | None, version: str | None) -> bool | None:
    """Whether the constraint names the charts' minor (`1.30` of `~1.30.0` or `1.30.2-solo`):
    enough when the charts only approximate another distribution's."""
    if constraint is None or version is None:
        return None
    named = re.match(r"\s*[~^=]?v?(\d+)\.(\d+)", constraint)
    return named is not None and named.groups() == tuple(version.split(".")[:2])


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of successive -f files: maps deep-merged, anything else replaced."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def schema_errors(chart: Any, schema: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """What `values.schema.json` says of the values, as jsonschema and Helm itself see it."""
    merged = chart.merge_values(values)
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
        for error in sorted(validator_class(schema).iter_errors(merged), key=str)
    ]
    try:
        chart.validate_schema(values)
    except helm.HelmValuesError as e:
        errors.append(f"helm: {e}")
    return errors


def leaves(values: Any, prefix: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every value the file sets: scalars, lists and empty maps, with their paths."""
    if isinstance(values, dict) and values:
        return [leaf for key, value in values.items() for leaf in leaves(value, (*prefix, key))]
    return [(prefix, values)] if prefix else []


def show(path: Path_) -> str:
    """`a.b` for a key path; a key with a dot or a slash in it is written `a["x.y/z"]`."""
    text = ""
    for part in path:
        if isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def mutations(value: Any) -> list[Any]:
    """Other values for a key, ending with its removal (None): one of them changes what a
    template that reads the key renders, whether it prints it or only tests it."""
    if isinstance(value, bool):
        return [not value, None]
    if isinstance(value, (int, float)):
        return [value + 7, None]
    if isinstance(value, str):
        return [f"{value}-{PROBE}" if value else PROBE, None]
    if isinstance(value, list):
        return [[] if value else [PROBE], None]
    if isinstance(value, dict):
        return [{PROBE: PROBE}, None]
    return [PROBE, None]


def with_value(values: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    """A copy of `values` with the key at `path` set to `value`, or removed when it is None."""
    changed = copy.deepcopy(values)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


def is_read(render, baseline: dict[str, str], values: dict[str, Any], path: Path_,
            injection_refs: list[Path_]) -> bool:
    for value in mutations(values_at(values, path)):
        try:
            probed = render(with_value(values, path, value))
        except helm.HelmError:
            return True  # the chart rejects the change: it looks at the key
        changed = {
            name
            for name in set(baseline) | set(probed)
            if name not in DUMPS_EVERY_VALUE and baseline.get(name) != probed.get(name)
        }
        if changed - {INJECTOR_TEMPLATE}:
            return True
        injector = (baseline.get(INJECTOR_TEMPLATE), probed.get(INJECTOR_TEMPLATE))
        if changed and injector_reads(*injector, injection_refs):
            return True
    return False


def values_at(values: dict[str, Any], path: Path_) -> Any:
    for part in path:
        values = values[part]
    return values


def injector_reads(before: str | None, after: str | None, injection_refs: list[Path_]) -> bool:
    """Whether a change of the sidecar injector ConfigMap reaches what injection reads: its
    config, or a forwarded value that an injection template refers to."""
    if before is None or after is None:
        return True
    a = yaml.safe_load(before) or {}
    b = yaml.safe_load(after) or {}
    a_values = json.loads(a.get("data", {}).pop("values", "{}") or "{}")
    b_values = json.loads(b.get("data", {}).pop("values", "{}") or "{}")
    if a != b:
        return True
    return any(related(ref, p) for p in differences(a_values, b_values) for ref in injection_refs)


def differences(a: Any, b: Any, prefix: Path_ = ()) -> list[Path_]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            p
            for key in set(a) | set(b)
            for p in differences(a.get(key), b.get(key), (*prefix, key))
        ]
    return [] if a == b else [prefix]


if __name__ == "__main__":
    sys.exit(main())
