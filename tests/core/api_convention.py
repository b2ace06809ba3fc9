#!/usr/bin/env python3
"""The app API keeps the conventions of docs/API.md ("Conventions").

Parses the public app headers (core/include/**/*.h and the app-facing part
of sdk/include/dimple/common.h) and checks what can be checked mechanically:

  - names: a handle verb (dimple_<verb>, the list below) or
    dimple_<module>_<verb> with a known module;
  - out parameters first: a `T **` parameter (not `T *const *`, an input
    array) or a parameter named out/out_*/*_out comes before every input;
  - allocated results come through `char **out`: no function returns a
    non-const pointer to char;
  - callbacks: every callback typedef takes `void *payload` first; in a
    function, a callback is followed at once by `void *payload`, and only
    an options struct may come after that pair;
  - an options struct pointer is the last parameter;
  - counts are size_t: no `int n` / `int n_*` parameter;
  - options, query and stats structs start with `size_t size` and have a
    DIMPLE_<NAME>_INIT macro.

Usage: api_convention.py [SRCDIR]   (default: $DIMPLE_TEST_SRCDIR or ..)
Prints TAP; the last comment line counts the functions that break a rule.
"""
import glob
import os
import re
import sys

HANDLE_VERBS = {
    "open", "open_path", "config_check", "close", "exec", "migrate",
    "migrate_dir", "schema_version", "sync", "errmsg", "errcode", "errstr",
    "version", "free", "sqlite", "db_path", "tables", "migrations_dir",
    "plugin_role", "plugin_in_use", "cipher_identity",
}
MODULES = {
    "entity", "json", "history", "author", "time", "logger", "live",
    "plugin", "remote", "cipher", "value",
}
OPTION_STRUCT = re.compile(r"^dimple_(\w+_)?(options|query|stats)$")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def split_params(params):
    params = params.strip()
    if params in ("", "void"):
        return []
    return [p.strip() for p in params.split(",")]


def param_name(p):
    m = re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", p)
    return m.group(1) if m else ""


def is_out(p):
    name = param_name(p)
    if re.search(r"\*\s*\*", p) and not re.search(r"\*\s*const\s*\*", p):
        return True
    # A writable pointer to a number is a result (a count, a length, a time).
    if re.match(r"^(size_t|u?int(8|16|32|64)?_t|int|double)\s*\*", p):
        return True
    return name == "out" or name.startswith("out_") or name.endswith("_out")


def is_count(p):
    name = param_name(p)
    return name == "n" or name.startswith("n_")


def check_params(params, where, cb_types, problems):
    """Rules on one parameter list; appends to problems."""
    seen_input = False
    for i, p in enumerate(params):
        if is_out(p):
            if seen_input:
                problems.append(f"{where}: out parameter '{p}' after an input")
        else:
            seen_input = True
        if is_count(p) and re.match(r"^(const\s+)?(unsigned\s+)?int\s", p):
            problems.append(f"{where}: count '{p}' is not size_t")
        ptype = p.split()[0] if p.split() else ""
        if ptype in cb_types or ptype.endswith("_cb"):
            nxt = params[i + 1] if i + 1 < len(params) else ""
            if not re.match(r"^void\s*\*\s*payload$", nxt):
                problems.append(f"{where}: callback '{p}' not followed by 'void *payload'")
            rest = params[i + 2:]
            if rest and not (len(rest) == 1 and is_options(rest[0])):
                problems.append(f"{where}: arguments after the callback pair: {rest}")
        if is_options(p) and i != len(params) - 1:
            problems.append(f"{where}: options struct '{p}' is not the last argument")


OPTION_STRUCTS = set()  # filled by main(): the option structs with a body


def is_options(p):
    m = re.match(r"^const\s+(\w+)\s*\*", p)
    return bool(m and m.group(1) in OPTION_STRUCTS)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "DIMPLE_TEST_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    headers = sorted(glob.glob(os.path.join(src, "core/include/**/*.h"), recursive=True))
    headers.append(os.path.join(src, "sdk/include/dimple/common.h"))
    text = ""
    for h in headers:
        with open(h) as f:
            text += strip_comments(f.read()) + "\n"

    for name in re.findall(r"typedef\s+struct\s+\w+\s*\{.*?\}\s*(\w+)\s*;", text, flags=re.S):
        if OPTION_STRUCT.match(name):
            OPTION_STRUCTS.add(name)
    cb_types = set(re.findall(r"typedef\s+[\w\s\*]+\(\s*\*\s*(\w+)\s*\)", text))
    tests = []  # (description, [problems])

    # Callback typedefs.
    problems = []
    for name, params in re.findall(r"typedef\s+[\w\s\*]+\(\s*\*\s*(\w+)\s*\)\s*\(([^)]*)\)", text):
        ps = split_params(params)
        if not ps or not re.match(r"^void\s*\*\s*payload$", ps[0]):
            problems.append(f"{name}: first parameter is not 'void *payload'")
        check_params(ps, name, cb_types, problems)
    tests.append(("callback typedefs take void *payload first, size_t counts", problems))

    # Options structs.
    problems = []
    for name, body in [(m.group(2), m.group(1)) for m in re.finditer(
            r"typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S)]:
        if not OPTION_STRUCT.match(name):
            continue
        first = body.strip().split(";")[0].split()
        if first != ["size_t", "size"]:
            problems.append(f"{name}: first member is not 'size_t size'")
        macro = name.upper() + "_INIT"
        if not re.search(r"#\s*define\s+" + macro + r"\b", text):
            problems.append(f"{name}: no {macro}")
    tests.append(("options/query/stats structs start with size_t size and have _INIT", problems))

    # Functions.
    bad_functions = set()
    n_functions = 0
    for m in re.finditer(r"DIMPLE_API\s+([^;{]*?)\b(dimple_\w+)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = m.group(1).strip(), m.group(2), m.group(3)
        n_functions += 1
        problems = []
        rest = name[len("dimple_"):]
        module = rest.split("_")[0]
        if rest not in HANDLE_VERBS and not (module in MODULES and "_" in rest):
            problems.append(f"{name}: neither a handle verb nor dimple_<module>_<verb>")
        if re.search(r"\bchar\s*\*", ret) and not ret.startswith("const"):
            problems.append(f"{name}: returns an allocated '{ret}' (use char **out)")
        check_params(split_params(params), name, cb_types, problems)
        if problems:
            bad_functions.add(name)
        tests.append((f"{name} keeps the convention", problems))

    fail = 0
    for i, (desc, problems) in enumerate(tests, 1):
        if problems:
            fail += 1
            print(f"not ok {i} - {desc}")
            for p in problems:
                print(f"#   {p}")
        else:
            print(f"ok {i} - {desc}")
    print(f"1..{len(tests)}")
    print(f"# {len(bad_functions)} of {n_functions} public functions break the convention")
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
