#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/k8s without a cluster.

No cluster is available where kediff is developed, so this parses every
deploy/**/*.yaml (PyYAML) and checks the fields the manifests rely on:

  - every document has apiVersion, kind and metadata.name;
  - a Job (or a CronJob's jobTemplate) in Indexed mode has completions ==
    parallelism and restartPolicy Never (backoffLimitPerIndex needs it);
  - every volumeMount names a volume of the pod;
  - the preprocessing Jobs pass --workers equal to completions (kediff takes
    the worker index from JOB_COMPLETION_INDEX);
  - the experts Job trains expert $JOB_COMPLETION_INDEX of --experts =
    completions, from a base on a PVC into expert-$JOB_COMPLETION_INDEX, with
    JOB_COMPLETION_INDEX declared from the completion-index annotation, and
    its shell script passes sh -n.

Usage: check_manifests.py [REPO]   (prints "manifests okay" and exits 0)
"""

import pathlib
import re
import subprocess
import sys

import yaml

INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"

errors = []


def fail(where, msg):
    errors.append(f"{where}: {msg}")


def job_specs(doc):
    """Yields (job spec, where) for a Job or a CronJob's job template."""
    kind = doc.get("kind")
    if kind == "Job":
        yield doc["spec"], "spec"
    elif kind == "CronJob":
        yield doc["spec"]["jobTemplate"]["spec"], "spec.jobTemplate.spec"


def container_text(c):
    """The command line of a container as one string (args joined)."""
    return " ".join(str(a) for a in (c.get("command") or []) + (c.get("args") or []))


def check_job(path, name, spec, where):
    at = f"{path}: {name}: {where}"
    pod = spec.get("template", {}).get("spec", {})
    containers = pod.get("containers") or []
    if not containers:
        fail(at, "no containers")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for c in containers:
        for m in c.get("volumeMounts") or []:
            if m["name"] not in volumes:
                fail(at, f"container {c['name']}: volumeMount {m['name']!r} names no volume (have {sorted(volumes)})")
    if spec.get("completionMode") != "Indexed":
        return spec, pod, containers, volumes
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if not isinstance(completions, int) or completions < 1:
        fail(at, f"completionMode Indexed needs completions >= 1, got {completions!r}")
    if parallelism != completions:
        fail(at, f"parallelism {parallelism!r} != completions {completions!r} (every index runs at once)")
    if pod.get("restartPolicy") != "Never":
        fail(at, f"restartPolicy {pod.get('restartPolicy')!r}, want Never")
    for c in containers:
        text = container_text(c)
        if " preprocess" in f" {text}" or text.startswith("preprocess"):
            m = re.search(r"--workers[= ](\d+)", text)
            if not m or int(m.group(1)) != completions:
                fail(at, f"container {c['name']}: preprocess needs --workers={completions} (= completions), got {m.group(0) if m else 'none'}")
    return spec, pod, containers, volumes


def check_experts(path, name, spec, pod, containers, volumes):
    at = f"{path}: {name}"
    if spec.get("completionMode") != "Indexed":
        fail(at, f"completionMode {spec.get('completionMode')!r}, want Indexed")
        return
    n = spec.get("completions")
    c = containers[0]
    env = {e["name"]: e for e in c.get("env") or []}
    idx = env.get("JOB_COMPLETION_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if idx != INDEX_ANNOTATION:
        fail(at, f"env JOB_COMPLETION_INDEX must come from {INDEX_ANNOTATION}, got {idx!r}")
    if c.get("command") != ["/bin/sh", "-c"] or len(c.get("args") or []) != 1:
        fail(at, "want command [/bin/sh, -c] and one script in args")
        return
    script = c["args"][0]
    r = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        fail(at, f"the container script does not parse (sh -n): {r.stderr.strip()}")
    want = [
        (r'kediff train expert "\$JOB_COMPLETION_INDEX"', "trains expert $JOB_COMPLETION_INDEX"),
        (rf"--experts={n}\b", f"--experts={n} (= completions)"),
        (r"--base=/shared/\S+", "--base on the shared volume"),
        (r"--data=\S+", "--data"),
        (r"--config=\S+", "--config"),
        (r'out=/shared/\S*expert-\$JOB_COMPLETION_INDEX\b', "out=/shared/.../expert-$JOB_COMPLETION_INDEX"),
        (r'--out="\$out"', '--out="$out"'),
    ]
    for rx, what in want:
        if not re.search(rx, script):
            fail(at, f"container script lacks {what} (/{rx}/)")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    shared = mounts.get("/shared")
    if not shared or "persistentVolumeClaim" not in volumes.get(shared, {}):
        fail(at, "/shared must be a persistentVolumeClaim volume (the base, the data and the experts live there)")
    limits = (c.get("resources") or {}).get("limits") or {}
    if "--device=cuda" in script and "nvidia.com/gpu" not in limits:
        fail(at, "--device=cuda without an nvidia.com/gpu limit")


def main():
    repo = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    files = sorted(repo.glob("deploy/**/*.yaml")) + sorted(repo.glob("deploy/**/*.yml"))
    if not files:
        fail(str(repo), "no deploy/**/*.yaml")
    experts_seen = False
    for path in files:
        rel = path.relative_to(repo)
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as e:
            fail(str(rel), f"not YAML: {e}")
            continue
        for doc in docs:
            for field in ("apiVersion", "kind", "metadata"):
                if field not in doc:
                    fail(str(rel), f"a document lacks {field}")
            name = (doc.get("metadata") or {}).get("name", "?")
            for spec, where in job_specs(doc):
                spec, pod, containers, volumes = check_job(rel, name, spec, where)
                if name == "kediff-experts":
                    experts_seen = True
                    check_experts(rel, name, spec, pod, containers, volumes)
        print(f"check_manifests: {rel}: {len(docs)} document(s)")
    if not experts_seen:
        fail("deploy/k8s", "no Job named kediff-experts (experts-indexed-job.yaml)")
    if errors:
        for e in errors:
            print(f"check_manifests: {e}", file=sys.stderr)
        sys.exit(1)
    print("manifests okay")


if __name__ == "__main__":
    main()
