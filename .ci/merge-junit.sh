#!/usr/bin/env bash
# Merges the junit.xml files of a partitioned run (`rig run --partition K/N` on N runners) into
# one, as if one runner had run them all: test suites of the same name become one suite, test
# cases sorted by name, counts recomputed, times summed. A test case found in two files is an
# error (the parts of a partition are disjoint), so a wrong matrix cannot hide behind the merge.
#   bash .ci/merge-junit.sh OUT.xml part-1/junit.xml part-2/junit.xml ...
set -euo pipefail
if (($# < 2)); then
  echo "usage: $0 OUT.xml IN.xml [IN.xml ...]" >&2
  exit 2
fi
exec python3 - "$@" <<'PY'
import os, sys
import xml.etree.ElementTree as ET

out, inputs = sys.argv[1], sys.argv[2:]
suites = {}  # name -> (attributes of the first suite seen, test cases, summed time)
for path in inputs:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        sys.exit(f"{path}: {e}")
    if root.tag not in ("testsuite", "testsuites"):
        sys.exit(f"{path}: not a JUnit file (root element <{root.tag}>)")
    for suite in [root] if root.tag == "testsuite" else root.findall("testsuite"):
        name = suite.get("name", "")
        attrs, cases, time = suites.setdefault(name, (dict(suite.attrib), [], [0.0]))
        cases.extend(suite.findall("testcase"))
        time[0] += float(suite.get("time") or 0)

merged = ET.Element("testsuites")
counts = dict(tests=0, failures=0, errors=0, skipped=0)
total_time = 0.0
for name, (attrs, cases, time) in sorted(suites.items()):
    seen = set()
    for case in cases:
        if case.get("name") in seen:
            sys.exit(f"test case `{case.get('name')}` of suite `{name}` is in two files: "
                     "the partitions overlap")
        seen.add(case.get("name"))
    cases.sort(key=lambda c: c.get("name", ""))
    suite = ET.SubElement(merged, "testsuite", attrs)
    c = dict(
        tests=len(cases),
        failures=sum(1 for x in cases if x.find("failure") is not None),
        errors=sum(1 for x in cases if x.find("error") is not None),
        skipped=sum(1 for x in cases if x.find("skipped") is not None),
    )
    for k, v in c.items():
        suite.set(k, str(v))
        counts[k] += v
    suite.set("time", f"{time[0]:.3f}")
    total_time += time[0]
    suite.extend(cases)
merged.set("name", next(iter(suites)) if len(suites) == 1 else "merged")
for k, v in counts.items():
    merged.set(k, str(v))
merged.set("time", f"{total_time:.3f}")

ET.indent(merged, space="    ")
tmp = out + ".tmp"
ET.ElementTree(merged).write(tmp, encoding="UTF-8", xml_declaration=True)
os.replace(tmp, out)
print(f"{out}: {counts['tests']} tests from {len(inputs)} file(s), "
      f"{counts['failures']} failures, {counts['errors']} errors, {counts['skipped']} skipped")
PY
