# INERT test sample for pyward's static analysis: never run it. Modelled on PyArmor-protected malicious payloads.
# Documented: https://checkmarx.com/blog/ (2023 PyArmor-obfuscated PyPI malware); GuardDog rule pyarmor
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
from pytransform import pyarmor_runtime
pyarmor_runtime()
__pyarmor__(__name__, __file__, b'PYARMOR\x00\x00\x03\x08\x00inert')
