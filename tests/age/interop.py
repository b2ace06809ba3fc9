#!/usr/bin/env python3
"""Interop between dimple-age and the reference `age` tool (TAP).

Both directions, for X25519 recipients and passphrases, binary and armored,
with plaintexts of 0 and 1 bytes, exactly 64 KiB, 64 KiB + 1 and several
MiB; wrong passphrases on both sides; and the key store: a key file
keys/<uuid7>.age opens with `age -d` and the passphrase, and the identity
the plugin prints decrypts stored objects with `age -d -i`.

usage: interop.py AGE_TOOL   (the tests/age/age_tool executable)
The `age` tool is required: without it the test fails (install: apt-get
install age).
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
AGEPTY = os.path.join(HERE, "agepty.py")
PASS = "interop passphrase \u00e9 1"
SIZES = [0, 1, 65536, 65537, 5 * 1024 * 1024 + 123]

count = 0
failed = 0


def check(ok, what, detail=""):
    global count, failed
    count += 1
    if ok:
        print(f"ok {count} - {what}")
    else:
        failed += 1
        print(f"not ok {count} - {what}")
        for line in str(detail).splitlines()[-8:]:
            print(f"#   {line}")
    sys.stdout.flush()
    return ok


def run(cmd, data=b"", env=None, stdin_file=None):
    e = dict(os.environ)
    e.update(env or {})
    if stdin_file:
        with open(stdin_file, "rb") as f:
            p = subprocess.run(cmd, stdin=f, capture_output=True, env=e, timeout=120)
    else:
        p = subprocess.run(cmd, input=data, capture_output=True, env=e, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def plaintext(n):
    # Deterministic, not repetitive at 64 KiB boundaries.
    out = bytearray()
    x = 0x12345678
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out += x.to_bytes(4, "little")
    return bytes(out[:n])


def main():
    if len(sys.argv) != 2:
        print("usage: interop.py AGE_TOOL", file=sys.stderr)
        return 2
    tool = sys.argv[1]
    age = shutil.which("age")
    keygen = shutil.which("age-keygen")
    if not check(age is not None and keygen is not None,
                 "the reference age tool is installed (apt-get install age)"):
        print(f"1..{count}")
        return 1
    tmp = tempfile.mkdtemp(prefix="dimple-age-interop.")
    try:
        return body(tool, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def body(tool, tmp):
    key = os.path.join(tmp, "key.txt")
    rc, _, err = run(["age-keygen", "-o", key])
    check(rc == 0, "age-keygen", err)
    rc, out, err = run(["age-keygen", "-y", key])
    recipient = out.decode().strip()
    check(rc == 0 and recipient.startswith("age1"), "age-keygen -y", err)
    penv = {"AGE_PASSPHRASE": PASS, "AGE_TOOL_PASSPHRASE": PASS}

    for n in SIZES:
        pt = plaintext(n)
        for armor in (False, True):
            a = ["-a"] if armor else []
            tag = f"{n} bytes{' armored' if armor else ''}"
            # age -> dimple-age (X25519)
            rc, ct, err = run(["age", "-r", recipient] + a, pt)
            check(rc == 0, f"age encrypts X25519 {tag}", err)
            rc, out, err = run([tool, "dec", "-i", key], ct)
            check(rc == 0 and out == pt, f"dimple-age decrypts age's X25519 {tag}", err)
            # dimple-age -> age (X25519)
            rc, ct, err = run([tool, "enc", "-r", recipient] + a, pt)
            check(rc == 0, f"dimple-age encrypts X25519 {tag}", err)
            if armor:
                check(ct.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n") and
                      ct.endswith(b"-----END AGE ENCRYPTED FILE-----\n"),
                      f"armor framing {tag}")
            rc, out, err = run(["age", "-d", "-i", key], ct)
            check(rc == 0 and out == pt, f"age decrypts dimple-age's X25519 {tag}", err)

        # Passphrases: age always encrypts at work factor 18 (~0.6 s).
        armors = (False, True) if n == 1 else (False,)
        for armor in armors:
            a = ["-a"] if armor else []
            tag = f"{n} bytes{' armored' if armor else ''}"
            rc, ct, err = run([sys.executable, AGEPTY, "-p"] + a, pt, env=penv)
            check(rc == 0 and ct.startswith(b"-----BEGIN" if armor else b"age-encryption.org/v1\n-> scrypt "),
                  f"age -p encrypts {tag}", err)
            rc, out, err = run([tool, "dec", "-p"], ct, env=penv)
            check(rc == 0 and out == pt, f"dimple-age decrypts age's passphrase file {tag}", err)
            rc, ct, err = run([tool, "enc", "-w", "10", "-p"] + a, pt, env=penv)
            check(rc == 0, f"dimple-age encrypts with a passphrase {tag}", err)
            rc, out, err = run([sys.executable, AGEPTY, "-d"], ct, env=penv)
            check(rc == 0 and out == pt, f"age decrypts dimple-age's passphrase file {tag}", err)

    # The default work factor (18) is what age expects and accepts.
    rc, ct, err = run([tool, "enc", "-p"], b"wf18", env=penv)
    check(rc == 0 and b"\n-> scrypt " in ct and b" 18\n" in ct,
          "dimple-age encrypts at work factor 18 by default", err)
    rc, out, err = run([sys.executable, AGEPTY, "-d"], ct, env=penv)
    check(rc == 0 and out == b"wf18", "age decrypts a work-factor-18 file", err)

    # Wrong passphrases, both ways.
    wrong = {"AGE_PASSPHRASE": "not it", "AGE_TOOL_PASSPHRASE": "not it"}
    rc, out, err = run([tool, "dec", "-p"], ct, env=wrong)
    check(rc == 1 and out == b"" and "no match" in err,
          "dimple-age refuses a wrong passphrase", err)
    rc, out, err = run([sys.executable, AGEPTY, "-d"], ct, env=wrong)
    check(rc != 0 and out == b"", "age refuses a wrong passphrase on our file", err)

    # Key store: keys/<uuid7>.age is an age passphrase file holding the
    # identity; identity() output works with age -d -i.
    store = os.path.join(tmp, "store")
    os.mkdir(store)
    pt = plaintext(70000)
    rc, ident, err = run([tool, "store", "-w", "10", store, "log/a/0001"], pt, env=penv)
    check(rc == 0 and b"AGE-SECRET-KEY-1" in ident, "plugin encrypts into a store", err)
    keys = glob.glob(os.path.join(store, "keys", "*.age"))
    check(len(keys) == 1 and len(os.path.basename(keys[0])) == 36 + 4,
          "one keys/<uuid7>.age", keys)
    ident_file = os.path.join(tmp, "identity.txt")
    with open(ident_file, "wb") as f:
        f.write(ident)
    rc, out, err = run(["age", "-d", "-i", ident_file, os.path.join(store, "log/a/0001")])
    check(rc == 0 and out == pt, "age -d -i <identity> opens a stored object", err)
    if keys:
        rc, out, err = run([sys.executable, AGEPTY, "-d", keys[0]], env=penv)
        secret = [l for l in out.decode(errors="replace").splitlines()
                  if l.startswith("AGE-SECRET-KEY-1")]
        check(rc == 0 and len(secret) == 1 and secret[0].encode() in ident,
              "age -d with the passphrase opens the key file", err)
        keyfile = os.path.join(tmp, "from-keyfile.txt")
        with open(keyfile, "wb") as f:
            f.write(out)
        rc, out, err = run(["age", "-d", "-i", keyfile, os.path.join(store, "log/a/0001")])
        check(rc == 0 and out == pt, "the key file's identity opens the object", err)
    # A second process on the same store reuses the key; age objects
    # encrypted to that key's recipient are readable by the plugin.
    rc, out, err = run([tool, "store-dec", store, "log/a/0001"], env=penv)
    check(rc == 0 and out == pt, "a new plugin instance decrypts the stored object", err)
    rc, out, err = run(["age-keygen", "-y", ident_file])
    rc2, ct, err2 = run(["age", "-r", out.decode().strip()], b"written by age")
    with open(os.path.join(store, "log", "a", "0002"), "wb") as f:
        f.write(ct)
    rc, out, err = run([tool, "store-dec", store, "log/a/0002"], env=penv)
    check(rc == 0 and out == b"written by age", "the plugin decrypts what age wrote to its recipient", err)
    rc, out, err = run([tool, "store-dec", store, "log/a/0002"], env=wrong)
    check(rc == 1 and "wrong passphrase for keys/" in err and "not it" not in err,
          "wrong passphrase names the key file", err)
    # mode = scrypt: each object is a passphrase file age opens.
    rc, out, err = run([tool, "store", "-m", "scrypt", "-w", "10", store, "log/s/1"],
                       b"per-file", env=penv)
    check(rc == 0, "mode = scrypt encrypts", err)
    rc, out, err = run([sys.executable, AGEPTY, "-d", os.path.join(store, "log/s/1")], env=penv)
    check(rc == 0 and out == b"per-file", "age -d opens a mode = scrypt object", err)
    # Plaintext in the store is refused, naming the object.
    with open(os.path.join(store, "log", "a", "0003"), "wb") as f:
        f.write(b'{"plain": true}')
    rc, out, err = run([tool, "store-dec", store, "log/a/0003"], env=penv)
    check(rc == 1 and out == b"" and "log/a/0003" in err, "plaintext object refused", err)

    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
