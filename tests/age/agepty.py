#!/usr/bin/env python3
"""Run the reference `age` tool with its passphrase prompt answered.

age reads passphrases only from /dev/tty, so this gives it a pty as its
controlling terminal while stdin/stdout stay pipes (works with closed stdin,
no tty, empty plaintext). The passphrase comes from $AGE_PASSPHRASE.

usage: AGE_PASSPHRASE=pw agepty.py -p [-a] [-o OUT] [IN]
       AGE_PASSPHRASE=pw agepty.py -d [-o OUT] [IN]
Exit code is age's (1 with "incorrect passphrase" on a wrong one).
"""
import fcntl
import os
import subprocess
import sys
import termios


def main():
    pw = os.environ["AGE_PASSPHRASE"].encode()
    master, slave = os.openpty()

    def ctty():  # child: setsid() already done; adopt the pty as ctty
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([os.environ.get("AGE", "age")] + sys.argv[1:],
                         stderr=slave, start_new_session=True,
                         preexec_fn=ctty, pass_fds=(slave,))
    os.close(slave)
    buf, answered = b"", 0
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break  # EIO once age closes the pty
        if not data:
            break
        buf += data
        if buf.count(b"passphrase") > answered and buf.rstrip().endswith(b":"):
            os.write(master, pw + b"\n")  # "Enter passphrase:", "Confirm"
            answered += 1
    rc = p.wait()
    os.close(master)
    sys.stderr.write(buf.decode(errors="replace"))
    sys.exit(rc)


if __name__ == "__main__":
    main()
