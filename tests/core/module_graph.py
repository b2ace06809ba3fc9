#!/usr/bin/env python3
"""The core's includes keep the module graph core/src/internal.h declares.

internal.h's top comment lists the modules layer by layer ("layer N: a b"),
the modules made of other files than x.c and x.h ("module m: glob ..."),
and the headers private to their module ("private: x.h ..."). This test
reads every #include "x.h" in core/src/*.c and *.h and fails, naming the
file, the include and the rule, when:

  - a file belongs to no module of the graph, or a module to two layers;
  - a file includes a header of a module in its own layer or above;
  - a file includes another module's private header;
  - the include graph between modules has a cycle (implied by the two
    rules above; checked on its own so the message names the cycle).

Headers not in core/src (dimple.h, <dimple/plugin.h>) are the public API
and may be included anywhere.

Usage: module_graph.py [SRCDIR]   (default: $DIMPLE_TEST_SRCDIR or ..)
Prints TAP.
"""
import fnmatch
import os
import re
import sys


def parse_graph(text):
    layer, globs, private = {}, {}, set()
    errors = []
    for line in text.splitlines():
        m = re.match(r"^\s*\*\s+layer (\d+):\s*(.*)$", line)
        if m:
            for mod in m.group(2).split():
                if mod in layer:
                    errors.append("internal.h: module %s is in layers %d "
                                  "and %s" % (mod, layer[mod], m.group(1)))
                layer[mod] = int(m.group(1))
            continue
        m = re.match(r"^\s*\*\s+module (\w+):\s*(.*)$", line)
        if m:
            globs[m.group(1)] = m.group(2).split()
            continue
        m = re.match(r"^\s*\*\s+private:\s*(.*)$", line)
        if m:
            private.update(m.group(1).split())
        if line.strip() == "*/":
            break
    for mod in globs:
        if mod not in layer:
            errors.append("internal.h: module %s has files but no layer" % mod)
    return layer, globs, private, errors


def module_of(name, layer, globs):
    for mod, pats in globs.items():
        if any(fnmatch.fnmatch(name, p) for p in pats):
            return mod
    base = name.rsplit(".", 1)[0]
    return base if base in layer else None


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = (sys.argv[1] if len(sys.argv) > 1 else
            os.environ.get("DIMPLE_TEST_SRCDIR", ".."))
    src = os.path.join(root, "core", "src")
    with open(os.path.join(src, "internal.h")) as f:
        layer, globs, private, problems = parse_graph(f.read())
    if not layer:
        problems.append("internal.h: no \"layer N:\" lines found")
    files = sorted(f for f in os.listdir(src) if f.endswith((".c", ".h")))
    graph = {}
    n_includes = 0
    for name in files:
        mod = module_of(name, layer, globs)
        if mod is None:
            problems.append("core/src/%s: in no module of internal.h's "
                            "graph (add it to a layer or a module line)"
                            % name)
            continue
        graph.setdefault(mod, set())
        with open(os.path.join(src, name)) as f:
            for lineno, line in enumerate(f, 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m or not os.path.exists(os.path.join(src, m.group(1))):
                    continue
                n_includes += 1
                inc = m.group(1)
                to = module_of(inc, layer, globs)
                where = "core/src/%s:%d: #include \"%s\"" % (name, lineno, inc)
                if to is None:
                    continue  # reported as a file in no module
                if to == mod:
                    continue
                graph[mod].add(to)
                if inc in private:
                    problems.append("%s: %s is private to module %s (%s may "
                                    "not include it)" % (where, inc, to, mod))
                elif layer[to] >= layer[mod]:
                    problems.append(
                        "%s: module %s (layer %d) may include only lower "
                        "layers, and %s is in layer %d" %
                        (where, mod, layer[mod], to, layer[to]))
    for c in cycles(graph):
        problems.append("include cycle between modules: %s" % " -> ".join(c))
    print("1..1")
    for p in problems:
        print("# " + p)
    print("%s 1 - %d files, %d includes of core headers, %d modules in %d "
          "layers keep internal.h's module graph" %
          ("not ok" if problems else "ok", len(files), n_includes,
           len(layer), len(set(layer.values()))))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
